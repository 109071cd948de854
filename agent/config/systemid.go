package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vigil-monitor/vigil"
)

// systemIDFile is the file in the state directory that keeps the id.
const systemIDFile = "system-id"

// NewSystemID returns a fresh random id in System Monitor's format:
// "<OS>-<32 lowercase hex digits>", with the OS as Python's
// platform.system() names it (Linux, Windows, Darwin). The hex digits are
// 128 bits from crypto/rand, where System Monitor hashed the time, the CPU
// count and a random number.
func NewSystemID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("system id: %w", err)
	}
	osName := runtime.GOOS
	switch osName {
	case "darwin":
		osName = "Darwin"
	default:
		osName = strings.ToUpper(osName[:1]) + osName[1:]
	}
	return osName + "-" + hex.EncodeToString(b), nil
}

// ID returns the host's id: c.SystemID when set, else the id stored
// in the state directory, which is created (NewSystemID) and stored on
// first use, so it is stable across runs. Errors come from the file system
// or from a stored id that is not a valid name.
func (c Config) ID() (string, error) {
	if c.SystemID != "" {
		return c.SystemID, nil
	}
	return StoredSystemID(c.StateDir, false)
}

// StoredSystemID returns the id stored in dir, creating one when there is
// none or when renew is set.
func StoredSystemID(dir string, renew bool) (string, error) {
	path := filepath.Join(dir, systemIDFile)
	if !renew {
		b, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if err := vigil.ValidateName(id); err != nil {
				return "", fmt.Errorf("system id in %s: %s", path, strings.TrimPrefix(err.Error(), "service: "))
			}
			return id, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("system id: %w", err)
		}
	}
	id, err := NewSystemID()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("system id: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("system id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("system id: %w", err)
	}
	return id, nil
}
