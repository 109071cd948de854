package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/services/api/web"
)

const (
	readSecret   = "vgl_read-secret-for-the-web-tests-0000000000000"
	writeSecret  = "vgl_write-secret-for-the-web-tests-000000000000"
	ingestSecret = "vgl_ingest-secret-for-the-web-tests-00000000000"
	wtPassword   = "legacy pass; with spaces"
)

// server serves the pages behind a guard (nil: no tokens) as vigil all
// does, with a stand-in for DELETE /v1/services/{name} that answers 204.
func server(t *testing.T, withGuard, tls bool) (*httptest.Server, *auth.Guard) {
	t.Helper()
	var g *auth.Guard
	if withGuard {
		var err error
		g, err = auth.NewGuard([]auth.Token{
			{Name: "viewer", SHA256: auth.Hash(readSecret), Scopes: []auth.Scope{auth.ScopeRead}},
			{Name: "operator", SHA256: auth.Hash(writeSecret), Scopes: []auth.Scope{auth.ScopeWrite}},
			{Name: "sender", SHA256: auth.Hash(ingestSecret), Scopes: []auth.Scope{auth.ScopeIngest}},
		}, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), auth.WithPassword("watchtower", wtPassword))
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := web.New(web.Config{Guard: g, Presets: []web.Preset{{Name: "backups", Service: "backup"}}})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	if g != nil {
		rt.Use(g.Handler)
	}
	p.Routes(rt)
	rt.Delete("/v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Token-Name", auth.TokenName(r.Context()))
		w.WriteHeader(http.StatusNoContent)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(rt)
	} else {
		srv = httptest.NewServer(rt)
	}
	t.Cleanup(srv.Close)
	return srv, g
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
func browser(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, u string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

var form = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

func login(t *testing.T, c *http.Client, base, secret string) answer {
	t.Helper()
	return do(t, c, "POST", base+"/gui/login", form, url.Values{"token": {secret}, "next": {"/gui/events"}}.Encode())
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)

func TestLoginRedirectsAndCookie(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	a := do(t, c, "GET", srv.URL+"/gui/services?status=down", nil, "")
	if want := "/gui/login?next=%2Fgui%2Fservices%3Fstatus%3Ddown"; a.code != http.StatusSeeOther || a.header.Get("Location") != want {
		t.Fatalf("GET /gui/services without a session = %d %q, want 303 %q", a.code, a.header.Get("Location"), want)
	}
	if a := do(t, c, "GET", srv.URL+"/gui/login", nil, ""); a.code != 200 || !strings.Contains(a.body, `name="token"`) {
		t.Fatalf("GET /gui/login = %d, want the form", a.code)
	}
	for _, tt := range []struct{ secret, want string }{
		{"vgl_nope", "unknown token or password"},
		{ingestSecret, "lacks scope read"},
	} {
		if a := login(t, c, srv.URL, tt.secret); a.code != http.StatusUnauthorized || !strings.Contains(a.body, tt.want) || a.header.Get("Set-Cookie") != "" {
			t.Errorf("login with %q = %d, want 401 saying %q and no cookie", tt.secret[:8], a.code, tt.want)
		}
	}
	a = login(t, c, srv.URL, writeSecret)
	if a.code != http.StatusSeeOther || a.header.Get("Location") != "/gui/events" {
		t.Fatalf("login = %d %q, want 303 /gui/events", a.code, a.header.Get("Location"))
	}
	ck := a.header.Get("Set-Cookie")
	for _, want := range []string{auth.CookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="} {
		if !strings.Contains(ck, want) {
			t.Errorf("Set-Cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") || strings.Contains(ck, writeSecret) {
		t.Errorf("Set-Cookie %q over plain HTTP: want no Secure and the secret encoded", ck)
	}
	a = do(t, c, "GET", srv.URL+"/gui/services", nil, "")
	if a.code != 200 {
		t.Fatalf("GET /gui/services with the session = %d", a.code)
	}
	if m := csrfMeta.FindStringSubmatch(a.body); m == nil || len(m[1]) != 43 {
		t.Errorf("page lacks a CSRF token meta tag")
	}
	for _, want := range []string{`data-can-write="true"`, "<th>Actions</th>", ">operator<", "Log out"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("write session's page lacks %q", want)
		}
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if a := do(t, c, "POST", srv.URL+"/gui/logout", nil, ""); a.code != http.StatusSeeOther || !strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout = %d %q, want 303 and the cookie cleared", a.code, a.header.Get("Set-Cookie"))
	}
	if a := do(t, c, "GET", srv.URL+"/gui/hosts", nil, ""); a.code != http.StatusSeeOther {
		t.Errorf("GET /gui/hosts after logout = %d, want 303 to the login form", a.code)
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	srv, _ := server(t, true, true)
	a := login(t, browser(t, srv), srv.URL, readSecret)
	if !strings.Contains(a.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("Set-Cookie over TLS = %q, want Secure", a.header.Get("Set-Cookie"))
	}
}

func TestReadOnlySeesNoActions(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	login(t, c, srv.URL, readSecret)
	for _, p := range []string{"/gui/services", "/gui/deadletters"} {
		a := do(t, c, "GET", srv.URL+p, nil, "")
		if a.code != 200 || !strings.Contains(a.body, `data-can-write="false"`) || strings.Contains(a.body, "Actions") || strings.Contains(a.body, "Retry") {
			t.Errorf("GET %s as a read-only token = %d, want no actions", p, a.code)
		}
		if !strings.Contains(a.body, "(read only)") {
			t.Errorf("GET %s does not say read only", p)
		}
	}
}

func TestCSRF(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	login(t, c, srv.URL, writeSecret)
	token := csrfMeta.FindStringSubmatch(do(t, c, "GET", srv.URL+"/gui/services", nil, "").body)[1]
	u := srv.URL + "/v1/services/backup"
	for _, tt := range []struct {
		name   string
		header map[string]string
		code   int
	}{
		{"no token", nil, http.StatusForbidden},
		{"wrong token", map[string]string{auth.CSRFHeader: token[:42] + "x"}, http.StatusForbidden},
		{"page's token", map[string]string{auth.CSRFHeader: token}, http.StatusNoContent},
	} {
		if a := do(t, c, "DELETE", u, tt.header, ""); a.code != tt.code {
			t.Errorf("DELETE with the session cookie, %s = %d %s, want %d", tt.name, a.code, a.body, tt.code)
		}
	}
	// A bearer token needs no CSRF token: no browser sends it on its own.
	plain := srv.Client()
	if a := do(t, plain, "DELETE", u, map[string]string{"Authorization": "Bearer " + writeSecret}, ""); a.code != http.StatusNoContent {
		t.Errorf("DELETE with a bearer token = %d, want 204", a.code)
	}
	// A read session may not change anything, CSRF token or not.
	rc := browser(t, srv)
	login(t, rc, srv.URL, readSecret)
	rtok := csrfMeta.FindStringSubmatch(do(t, rc, "GET", srv.URL+"/gui/services", nil, "").body)[1]
	if rtok == token {
		t.Errorf("two sessions share a CSRF token")
	}
	if a := do(t, rc, "DELETE", u, map[string]string{auth.CSRFHeader: rtok}, ""); a.code != http.StatusForbidden {
		t.Errorf("DELETE by a read session = %d, want 403", a.code)
	}
}

func TestWatchTowerPassword(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	if a := login(t, c, srv.URL, wtPassword); a.code != http.StatusSeeOther {
		t.Fatalf("login with the watchTower password = %d %s", a.code, a.body)
	}
	page := do(t, c, "GET", srv.URL+"/gui/services", nil, "")
	if !strings.Contains(page.body, ">watchtower<") || !strings.Contains(page.body, `data-can-write="true"`) {
		t.Errorf("the watchTower password's page does not show identity watchtower with actions")
	}
	token := csrfMeta.FindStringSubmatch(page.body)[1]
	a := do(t, c, "DELETE", srv.URL+"/v1/services/x", map[string]string{auth.CSRFHeader: token}, "")
	if a.code != http.StatusNoContent || a.header.Get("X-Token-Name") != "watchtower" {
		t.Errorf("DELETE by the watchTower session = %d as %q, want 204 as watchtower", a.code, a.header.Get("X-Token-Name"))
	}
	// The password opens the pages, not the API for scripts.
	if a := do(t, srv.Client(), "DELETE", srv.URL+"/v1/services/x", map[string]string{"Authorization": "Bearer " + wtPassword}, ""); a.code != http.StatusUnauthorized {
		t.Errorf("the watchTower password as a bearer token = %d, want 401", a.code)
	}
}

func TestRevokedSessionGoesToLogin(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	u, _ := url.Parse(srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: auth.CookieName, Value: "dmdsX3Jldm9rZWQ", Path: "/"}})
	a := do(t, c, "GET", srv.URL+"/gui/alerts", nil, "")
	if a.code != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/gui/login") || !strings.Contains(a.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("GET /gui/alerts with an unknown session = %d %q %q, want 303 to the login form and the cookie cleared",
			a.code, a.header.Get("Location"), a.header.Get("Set-Cookie"))
	}
	if a := do(t, c, "GET", srv.URL+"/v1/services", nil, ""); a.code != http.StatusUnauthorized {
		t.Errorf("API GET with an unknown session = %d, want 401 JSON", a.code)
	}
}

func TestLoginRefusals(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	if a := do(t, c, "POST", srv.URL+"/gui/login", map[string]string{"Content-Type": form["Content-Type"], "Origin": "https://evil.example"},
		url.Values{"token": {writeSecret}}.Encode()); a.code != http.StatusForbidden || a.header.Get("Set-Cookie") != "" {
		t.Errorf("cross-site login = %d, want 403 and no cookie", a.code)
	}
	for _, next := range []string{"//evil.example/x", "https://evil.example", "/v1/services", "/gui\\evil"} {
		a := do(t, c, "POST", srv.URL+"/gui/login", form, url.Values{"token": {writeSecret}, "next": {next}}.Encode())
		if a.header.Get("Location") != "/gui/" {
			t.Errorf("login with next=%q goes to %q, want /gui/", next, a.header.Get("Location"))
		}
	}
	big := url.Values{"token": {strings.Repeat("x", 10<<10)}}.Encode()
	if a := do(t, c, "POST", srv.URL+"/gui/login", form, big); a.code != http.StatusBadRequest {
		t.Errorf("login with a 10 KiB body = %d, want 400", a.code)
	}
}

func TestOpenWithoutTokens(t *testing.T) {
	srv, _ := server(t, false, false)
	c := browser(t, srv)
	if a := do(t, c, "GET", srv.URL+"/gui", nil, ""); a.code != http.StatusSeeOther || a.header.Get("Location") != "/gui/services" {
		t.Errorf("GET /gui = %d %q, want 303 /gui/services", a.code, a.header.Get("Location"))
	}
	if a := do(t, c, "GET", srv.URL+"/gui/login", nil, ""); a.code != http.StatusSeeOther {
		t.Errorf("GET /gui/login without tokens = %d, want 303 on to the pages", a.code)
	}
	for _, p := range []string{"/gui/services", "/gui/events", "/gui/hosts", "/gui/hosts/web%201", "/gui/alerts", "/gui/deadletters"} {
		a := do(t, c, "GET", srv.URL+p, nil, "")
		if a.code != 200 || !strings.Contains(a.body, `data-can-write="true"`) || strings.Contains(a.body, "Log out") {
			t.Errorf("GET %s without tokens = %d, want the page with actions and no log out", p, a.code)
		}
	}
	if a := do(t, c, "GET", srv.URL+"/gui/hosts/web%201", nil, ""); !strings.Contains(a.body, `data-host="web 1"`) {
		t.Errorf("host page does not carry the host id")
	}
	if a := do(t, c, "GET", srv.URL+"/gui/events", nil, ""); !strings.Contains(a.body, `data-presets="[{&#34;name&#34;:&#34;backups&#34;,&#34;service&#34;:&#34;backup&#34;}]"`) {
		t.Errorf("events page lacks the presets: %s", a.body)
	}
}

func TestStaticNeedsNoLogin(t *testing.T) {
	srv, _ := server(t, true, false)
	c := browser(t, srv)
	page := do(t, c, "GET", srv.URL+"/gui/login", nil, "")
	m := regexp.MustCompile(`/gui/static/app\.js\?v=([0-9a-f]+)`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("login page does not load app.js with a version")
	}
	for _, tt := range []struct{ path, ct, cache string }{
		{"/gui/static/app.js?v=" + m[1], "text/javascript", "immutable"},
		{"/gui/static/app.css", "text/css", "no-cache"},
	} {
		a := do(t, c, "GET", srv.URL+tt.path, nil, "")
		if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), tt.ct) || !strings.Contains(a.header.Get("Cache-Control"), tt.cache) {
			t.Errorf("GET %s = %d %q %q, want 200 %s, %s", tt.path, a.code, a.header.Get("Content-Type"), a.header.Get("Cache-Control"), tt.ct, tt.cache)
		}
	}
}
