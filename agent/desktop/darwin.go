//go:build darwin

package desktop

import (
	"context"
	"fmt"
	"os/exec"
)

// Osascript shows notes with macOS's osascript.
type Osascript struct{}

// New returns the notifier of this platform: osascript here.
func New() (Notifier, error) { return Osascript{}, nil }

// Notify runs osascript with OsascriptArgs; the link is appended to the
// body.
func (Osascript) Notify(ctx context.Context, n Note) error {
	out, err := exec.CommandContext(ctx, "osascript", OsascriptArgs(n.Title, withURL(n))...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("desktop: osascript: %w: %s", err, out)
	}
	return nil
}

// Close does nothing.
func (Osascript) Close() error { return nil }
