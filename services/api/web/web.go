// Package web serves vigil's web pages under /gui: a live services board,
// an events explorer, hosts with charts, alerts with their deliveries and
// the dead letters. The pages are html/template shells with small
// hand-written JavaScript and CSS, embedded in the binary (no CDN, no
// Node build step); the script reads the native JSON API (/v1/…) with the
// session cookie and follows GET /v1/stream (Server-Sent Events) for live
// updates. docs/gui.md describes the pages, the login and the CSRF token.
//
// Authentication is package auth's: the guard accepts the session cookie
// set by the login form (a token, or the legacy watchTower password) in
// place of the bearer header and checks X-CSRF-Token on a session's
// changes; the pages embed that token and show actions only to identities
// with scope write. Without a guard (vigil without tokens) the pages are
// open and show every action.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-monitor/vigil/internal/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxLoginBody bounds the login form's body, in bytes.
const maxLoginBody = 8 << 10

// Preset is one filter preset of the events explorer: a name, and the
// service and message regular expressions it fills in (watchTower's
// eventsPresets).
type Preset struct {
	Name    string `json:"name"`
	Service string `json:"service,omitempty"`
	Message string `json:"message,omitempty"`
}

// Config holds the pages' options.
type Config struct {
	// Guard checks tokens and holds the sessions; nil when vigil runs
	// without tokens, and then the pages need no login.
	Guard *auth.Guard
	// Presets are the events explorer's filter presets.
	Presets []Preset
	// Log receives the pages' errors (template failures); nil discards.
	Log *slog.Logger
}

// Pages serves the web pages.
type Pages struct {
	cfg     Config
	log     *slog.Logger
	tmpl    map[string]*template.Template
	static  http.Handler
	version string // of the static assets, for cache busting
	presets string // JSON of cfg.Presets
}

// page names a page: its template and its title.
type page struct{ name, title string }

var pages = []page{
	{"login", "Log in"},
	{"services", "Services"},
	{"events", "Events"},
	{"hosts", "Hosts"},
	{"host", "Host"},
	{"alerts", "Alerts"},
	{"deadletters", "Dead letters"},
}

// New parses the embedded templates. It fails only when they do not parse
// (a build mistake).
func New(cfg Config) (*Pages, error) {
	p := &Pages{cfg: cfg, log: cfg.Log, tmpl: map[string]*template.Template{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "web")
	for _, pg := range pages {
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+pg.name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", pg.name, err)
		}
		p.tmpl[pg.name] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	h := sha256.New()
	if err := fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		h.Write(b)
		return err
	}); err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	p.version = hex.EncodeToString(h.Sum(nil))[:12]
	files := http.StripPrefix(auth.StaticPrefix, http.FileServerFS(sub))
	p.static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == p.version {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
	presets := cfg.Presets
	if presets == nil {
		presets = []Preset{}
	}
	b, err := json.Marshal(presets)
	if err != nil {
		return nil, fmt.Errorf("web: presets: %w", err)
	}
	p.presets = string(b)
	return p, nil
}

// Routes mounts the pages:
//
//	GET  /gui, /gui/             → 303 /gui/services
//	GET  /gui/login              the login form (→ /gui/services without tokens)
//	POST /gui/login              form field token; sets the session cookie
//	POST /gui/logout             clears it
//	GET  /gui/services           services board
//	GET  /gui/events             events explorer
//	GET  /gui/hosts              hosts table
//	GET  /gui/hosts/{id}         one host's charts
//	GET  /gui/alerts             alerts and their deliveries
//	GET  /gui/deadletters        dead letters
//	GET  /gui/static/*           embedded CSS and JavaScript
func (p *Pages) Routes(rt chi.Router) {
	home := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, auth.GUIPrefix+"/services", http.StatusSeeOther)
	}
	rt.Get(auth.GUIPrefix, home)
	rt.Get(auth.GUIPrefix+"/", home)
	rt.Get(auth.LoginPath, p.loginForm)
	rt.Post(auth.LoginPath, p.login)
	rt.Post(auth.LogoutPath, p.logout)
	for _, name := range []string{"services", "events", "hosts", "alerts", "deadletters"} {
		rt.Get(auth.GUIPrefix+"/"+name, p.render(name))
	}
	rt.Get(auth.GUIPrefix+"/hosts/{id}", p.render("host"))
	rt.Method(http.MethodGet, auth.StaticPrefix+"*", p.static)
}

// view is what the templates see.
type view struct {
	Page     string
	Title    string
	Version  string
	User     string // identity name, "" without tokens
	Auth     bool   // tokens are configured: show log out
	CanWrite bool
	CSRF     string
	Presets  string // JSON
	Host     string // the host page's id
	Next     string // the login form's return path
	Error    string // the login form's error
}

// render returns the handler of page name for the request's identity.
func (p *Pages) render(name string) http.HandlerFunc {
	title := name
	for _, pg := range pages {
		if pg.name == name {
			title = pg.title
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		v := view{Page: name, Title: title, CanWrite: true, Presets: p.presets}
		if p.cfg.Guard != nil {
			id, ok := auth.FromContext(r.Context())
			if !ok {
				// The guard did not run: the pages were mounted outside
				// it. Refuse rather than show actions to anyone.
				http.Redirect(w, r, auth.LoginRedirect(r.URL), http.StatusSeeOther)
				return
			}
			v.Auth, v.User, v.CanWrite, v.CSRF = true, id.Name, id.Can(auth.ScopeWrite), id.CSRF()
		}
		if name == "host" {
			v.Host = chi.URLParam(r, "id")
			if u, err := url.PathUnescape(v.Host); err == nil {
				v.Host = u
			}
			v.Title = "Host " + v.Host
		}
		p.write(w, http.StatusOK, name, v)
	}
}

// write executes template name into a buffer and sends it with the pages'
// security headers: a Content-Security-Policy that allows only this
// origin's scripts, styles and connections, no framing, no sniffing.
func (p *Pages) write(w http.ResponseWriter, code int, name string, v view) {
	v.Version = p.version
	var buf bytes.Buffer
	if err := p.tmpl[name].Execute(&buf, v); err != nil {
		p.log.Error("template", "page", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes()) // the client went away
}

// loginForm serves GET /gui/login; without tokens there is nothing to log
// in to and it sends the browser on.
func (p *Pages) loginForm(w http.ResponseWriter, r *http.Request) {
	next := auth.SafeNext(r.URL.Query().Get("next"))
	if p.cfg.Guard == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	p.write(w, http.StatusOK, "login", view{Page: "login", Title: "Log in", Next: next, Auth: true})
}

// login serves POST /gui/login: form field token (a token or the
// watchTower password) and next. It answers 303 to next with the session
// cookie, or the form again with 401 and the reason. A request whose
// Origin header names another site is refused (403): SameSite keeps the
// cookie from cross-site requests, and this keeps another site from
// logging a browser in.
func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	next := auth.SafeNext(r.URL.Query().Get("next"))
	if p.cfg.Guard == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		p.write(w, http.StatusBadRequest, "login", view{Page: "login", Title: "Log in", Next: next, Auth: true, Error: "the form could not be read"})
		return
	}
	if f := r.PostForm.Get("next"); f != "" {
		next = auth.SafeNext(f)
	}
	if _, err := p.cfg.Guard.Login(w, r, r.PostForm.Get("token")); err != nil {
		msg := "unknown token or password"
		if errors.Is(err, auth.ErrNoRead) {
			msg = err.Error()
		}
		p.write(w, http.StatusUnauthorized, "login", view{Page: "login", Title: "Log in", Next: next, Auth: true, Error: msg})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout serves POST /gui/logout: it clears the session cookie and sends
// the browser to the login form.
func (p *Pages) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site logout refused", http.StatusForbidden)
		return
	}
	auth.Logout(w, r)
	http.Redirect(w, r, auth.LoginPath, http.StatusSeeOther)
}

// sameOrigin reports whether r's Origin header, when present, names r's
// own host (browsers send it on every POST form submission).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
