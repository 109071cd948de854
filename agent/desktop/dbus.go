//go:build !windows && !darwin

package desktop

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/godbus/dbus/v5"
)

// Freedesktop names of the Desktop Notifications Specification 1.2.
const (
	notifyService = "org.freedesktop.Notifications"
	notifyPath    = "/org/freedesktop/Notifications"
	notifyIface   = "org.freedesktop.Notifications"
)

// DBus shows notes through org.freedesktop.Notifications on the session
// bus named by DBUS_SESSION_BUS_ADDRESS.
type DBus struct {
	mu     sync.Mutex
	conn   *dbus.Conn
	markup bool
}

// New returns the notifier of this platform: D-Bus here.
func New() (Notifier, error) { return NewDBus() }

// NewDBus connects to the session bus and asks the notification server for
// its capabilities. It fails when there is no session bus.
func NewDBus() (*DBus, error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, fmt.Errorf("desktop: session bus: %w", err)
	}
	d := &DBus{conn: conn}
	var caps []string
	if err := conn.Object(notifyService, notifyPath).Call(notifyIface+".GetCapabilities", 0).Store(&caps); err == nil {
		d.markup = slices.Contains(caps, "body-markup")
	}
	return d, nil
}

// Notify calls Notify(app_name "vigil", replaces_id 0, app_icon "",
// summary, body, actions [], hints {urgency: byte}, expire_timeout -1) and
// returns the server's error, if any. The body is markup-escaped when the
// server reads markup; a link is appended to it.
func (d *DBus) Notify(ctx context.Context, n Note) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	body := clean(withURL(n))
	if d.markup {
		body = MarkupEscape(body)
	}
	hints := map[string]dbus.Variant{"urgency": dbus.MakeVariant(Urgency(n.Level))}
	call := d.conn.Object(notifyService, notifyPath).CallWithContext(ctx, notifyIface+".Notify", 0,
		AppName, uint32(0), "", clean(n.Title), body, []string{}, hints, int32(-1))
	if call.Err != nil {
		return fmt.Errorf("desktop: notify: %w", call.Err)
	}
	return nil
}

// Close closes the bus connection.
func (d *DBus) Close() error { return d.conn.Close() }
