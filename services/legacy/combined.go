package legacy

import (
	"net/http"
	"strings"
)

// Combined serves every enabled surface on one listener (they all default
// to "/" on port 5000), dispatching as compat.md §0 recommends:
//
//   - a WebSocket upgrade → fleet;
//   - GET / with a "password" header → watchTower's list; any other GET / →
//     Traylert's info, or a redirect to the GUI when Traylert is off;
//   - POST whose JSON body has an "action" or "stats" key → System Monitor
//     (on any path); any other POST / → watchTower pulse;
//   - POST /alert → Traylert; every other path → watchTower's routes.
//
// Nil surfaces are off.
type Combined struct {
	WatchTower *WatchTower
	Traylert   *Traylert
	SysMon     *SysMon
	Fleet      *Fleet
	// GUI is where a bare GET / goes when Traylert is off (default "/gui/").
	GUI string
}

func (c *Combined) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.Fleet != nil && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		c.Fleet.ServeHTTP(w, r)
		return
	}
	_, hasPassword := r.Header["Password"]
	if r.Method == http.MethodPost && c.SysMon != nil && !hasPassword {
		body, err := readBody(r, c.SysMon.cfg.MaxBody)
		if err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		if IsSysMon(body) {
			c.SysMon.ServeHTTP(w, r)
			return
		}
	}
	if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !hasPassword {
		switch {
		case c.Traylert != nil:
			c.Traylert.ServeHTTP(w, r)
		default:
			gui := c.GUI
			if gui == "" {
				gui = "/gui/"
			}
			http.Redirect(w, r, gui, http.StatusFound)
		}
		return
	}
	if r.URL.Path == "/alert" && c.Traylert != nil {
		c.Traylert.ServeHTTP(w, r)
		return
	}
	if c.WatchTower != nil && c.WatchTower.Serve(w, r) {
		return
	}
	http.NotFound(w, r)
}
