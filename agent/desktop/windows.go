//go:build windows

package desktop

import (
	"context"
	"fmt"

	"github.com/go-toast/toast"
)

// Toast shows notes with github.com/go-toast/toast (a PowerShell script
// that calls the Windows.UI.Notifications API).
type Toast struct{}

// New returns the notifier of this platform: go-toast here.
func New() (Notifier, error) { return Toast{}, nil }

// Notify pushes a toast; a click opens the note's link. Every text is
// escaped with PowerShellText or PowerShellAttr first, because go-toast
// pastes it into its script unescaped.
func (Toast) Notify(_ context.Context, n Note) error {
	t := toast.Notification{
		AppID:   AppName,
		Title:   PowerShellText(n.Title),
		Message: PowerShellText(n.Body),
		Audio:   toast.Default,
	}
	if u := SafeURL(n.URL); u != "" {
		t.ActivationArguments = PowerShellAttr(u)
	}
	if n.Level >= 3 {
		t.Duration = toast.Long
	}
	if err := t.Push(); err != nil {
		return fmt.Errorf("desktop: toast: %w", err)
	}
	return nil
}

// Close does nothing.
func (Toast) Close() error { return nil }
