package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// pki is a private CA made for one test, with a server certificate for
// 127.0.0.1 and localhost and a client certificate, written to Dir.
type pki struct {
	CA                                            *natsconn.CA
	Dir, CAFile, Cert, Key, ClientCert, ClientKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := natsconn.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{CA: ca, Dir: t.TempDir()}
	p.CAFile = writeTo(t, p.Dir, "ca.pem", ca.CertPEM())
	cert, key, err := ca.Issue("server", []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.Cert, p.Key = writeTo(t, p.Dir, "server.pem", cert), writeTo(t, p.Dir, "server-key.pem", key)
	cert, key, err = ca.Issue("client", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.ClientCert, p.ClientKey = writeTo(t, p.Dir, "client.pem", cert), writeTo(t, p.Dir, "client-key.pem", key)
	return p
}

// tlsConf is the tls block of a nats-server config that requires client
// certificates signed by the CA.
func (p *pki) tlsConf() string {
	return fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: true\n}\n", p.Cert, p.Key, p.CAFile)
}

func (p *pki) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.CA.Pool(), MinVersion: tls.VersionTLS12}}}
}

func writeTo(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func doWith(t *testing.T, c *http.Client, method, url, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// waitStatus waits until GET /v1/services/{name} says status.
func waitStatus(t *testing.T, c *http.Client, base, name, status string) {
	t.Helper()
	bustest.Eventually(t, func() error {
		code, body := doWith(t, c, http.MethodGet, base+"/v1/services/"+name, "")
		var s struct {
			Status string `json:"status"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &s) != nil || s.Status != status {
			return fmt.Errorf("GET /v1/services/%s = %d %s, want status %s", name, code, body, status)
		}
		return nil
	})
}

// agentNKey makes an agent nkey and returns its users entry and seed file.
func agentNKey(t *testing.T, host string) (natsconn.User, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	perms, err := natsconn.AgentPermissions(host, natsconn.AgentScope{})
	if err != nil {
		t.Fatal(err)
	}
	return natsconn.User{NKey: pub, Permissions: perms}, writeTo(t, t.TempDir(), "agent.nk", seed)
}

// TestAllWithIdentities runs vigil all with --nats-identities and every
// listener on TLS with a private CA (HTTPS, the legacy listeners — the
// combined one and the System Monitor surface's own —, the NATS client
// port) and one agent user: every role works on its own least-privilege
// in-process identity (a pulse is stored, goes down, is listed; a
// watchTower heartbeat over HTTPS is stored), the agent publishes its
// stats over TLS with its nkey and pulses through ingest, and a client
// without a user or without the CA is refused.
func TestAllWithIdentities(t *testing.T) {
	p := newPKI(t)
	user, seed := agentNKey(t, "web1")
	conf := writeTo(t, t.TempDir(), "nats.conf",
		[]byte(strings.Replace(p.tlsConf(), "verify: true", "verify: false", 1)+natsconn.UsersConf([]natsconn.User{user})))
	cfg := testConfig(t, t.TempDir())
	cfg.NATS.Identities = true
	cfg.NATS.Config = conf
	cfg.TLSCert, cfg.TLSKey = p.Cert, p.Key
	cfg.Legacy.Addr = "127.0.0.1:0"
	cfg.Legacy.TLSCert, cfg.Legacy.TLSKey = p.Cert, p.Key
	cfg.Legacy.WatchTower.Password = "change me"
	cfg.Legacy.Traylert.Key = "0123456789abcdef"
	cfg.Legacy.Traylert.LowDisk = 0
	cfg.Legacy.SysMon.Addr = "127.0.0.1:0"
	cfg.Legacy.SysMon.TLSCert, cfg.Legacy.SysMon.TLSKey = p.Cert, p.Key
	cfg.Legacy.Fleet.Addr = "off"
	if err := cfg.validate("all", allRoles()); err != nil {
		t.Fatal(err)
	}
	a := startTest(t, cfg, allRoles())
	base := "https://" + a.HTTPAddr()
	c := p.httpClient()

	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://"+a.LegacyAddr("combined")+"/heartbeat",
		strings.NewReader(`{"service":"legacy-svc","alertType":"pushover","alertTarget":"uQiRzpo4DXghDmr9QzzfQu27cmVRsG","nextIn":60}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("password", "change me")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("watchTower heartbeat over HTTPS: %v", err)
	}
	hb, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || !strings.Contains(string(hb), `"result":200`) {
		t.Fatalf("watchTower heartbeat over HTTPS = %s %v, want result 200", hb, err)
	}
	waitStatus(t, c, base, "legacy-svc", "up")
	if code, body := doWith(t, c, http.MethodPost, "https://"+a.LegacyAddr("sysmon")+"/", `{"action": "check_url"}`); code != http.StatusAccepted {
		t.Errorf("System Monitor check_url over HTTPS on its own listener = %d %s, want 202", code, body)
	}
	for _, addr := range []string{a.HTTPAddr(), a.LegacyAddr("combined"), a.LegacyAddr("sysmon")} {
		r, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := http.DefaultClient.Do(r); err == nil {
			_ = resp.Body.Close()
			t.Errorf("https://%s without the CA succeeded, want a certificate error", addr)
		}
	}

	code, body := doWith(t, c, http.MethodPost, base+"/v1/pulses", `{"service":"backup","next_in":0.2}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses = %d %s, want 202", code, body)
	}
	waitStatus(t, c, base, "backup", "down")
	bustest.Eventually(t, func() error {
		code, body := doWith(t, c, http.MethodGet, base+"/v1/alerts", "")
		if code != http.StatusOK || !strings.Contains(string(body), `"down"`) {
			return fmt.Errorf("GET /v1/alerts = %d %s, want the down alert", code, body)
		}
		return nil
	})

	url := strings.Replace(a.NATSURL(), "nats://", "tls://", 1)
	agent, err := nats.Connect(url, nats.RootCAs(p.CAFile), must(nats.NkeyOptionFromSeed(seed)),
		nats.CustomInboxPrefix(natsconn.HostInbox("web1")))
	if err != nil {
		t.Fatalf("agent connect over TLS with its nkey: %v", err)
	}
	defer agent.Close()
	js, err := jetstream.New(agent)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stats := fmt.Sprintf(`{"host":"web1","at":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := js.Publish(ctx, vigil.HostStatsSubject("web1"), []byte(stats)); err != nil {
		t.Fatalf("agent publishes its stats: %v", err)
	}
	bustest.Eventually(t, func() error {
		if code, body := doWith(t, c, http.MethodGet, base+"/v1/hosts/web1", ""); code != http.StatusOK {
			return fmt.Errorf("GET /v1/hosts/web1 = %d %s", code, body)
		}
		return nil
	})
	resp2, err := agent.RequestWithContext(ctx, vigil.SubjectInPulse, []byte(`{"service":"host:web1","next_in":60}`))
	if err != nil {
		t.Fatalf("agent pulse through ingest: %v", err)
	}
	if st := resp2.Header.Get("Status"); st != "202" {
		t.Fatalf("agent pulse answered %s %s, want 202", st, resp2.Data)
	}
	waitStatus(t, c, base, "host:web1", "up")

	if nc, err := nats.Connect(url, nats.RootCAs(p.CAFile), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a client without a user connected, want an authorization error")
	}
	if nc, err := nats.Connect(url, must(nats.NkeyOptionFromSeed(seed)), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a client without the CA connected, want a certificate error")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// roleUsers returns the users block of the four roles with fresh
// passwords, and the passwords.
func roleUsers(t *testing.T) (string, map[string]string) {
	t.Helper()
	pw := map[string]string{}
	var users []natsconn.User
	for _, role := range natsconn.Roles {
		p, err := natsconn.RolePermissions(role)
		if err != nil {
			t.Fatal(err)
		}
		pw[role] = "pw-" + role
		users = append(users, natsconn.User{Name: role, Password: pw[role], Permissions: p})
	}
	return natsconn.UsersConf(users), pw
}

// TestRolesWithIdentitiesOverTLS runs each role as its own process would in
// docker-compose: against an external nats-server with the role users of
// `vigil nats users` and mutual TLS with a private CA, every role on its
// own user. HTTPS ingest → TLS NATS → stored, the watchdog judges it down,
// the api lists it; a client without the CA is refused by both the HTTPS
// listener and NATS.
func TestRolesWithIdentitiesOverTLS(t *testing.T) {
	p := newPKI(t)
	users, pw := roleUsers(t)
	conf := writeTo(t, t.TempDir(), "nats.conf", []byte(p.tlsConf()+users))
	srv, err := bus.StartEmbedded(bus.ServerConfig{Name: "ext", DataDir: t.TempDir(), Listen: "127.0.0.1:0", ConfigFile: conf}, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	url := strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)

	// Like separate processes, the roles start at once: each creates only
	// the streams it owns and waits for the others' (one after the other,
	// the first would wait forever).
	type started struct {
		role string
		app  *app
		err  error
	}
	results := make(chan started, len(natsconn.Roles))
	for _, role := range natsconn.Roles {
		cfg := defaultConfig()
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.TLSCert, cfg.TLSKey = p.Cert, p.Key
		cfg.NATS.URL = url
		cfg.NATS.User, cfg.NATS.Password = role, pw[role]
		cfg.NATS.Identities = true
		cfg.NATS.TLSCA, cfg.NATS.TLSCert, cfg.NATS.TLSKey = p.CAFile, p.ClientCert, p.ClientKey
		if err := cfg.validate(role, []string{role}); err != nil {
			t.Fatal(err)
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, err := startApp(ctx, cfg, []string{role}, bustest.Logger(t).With("role", role))
			results <- started{role, a, err}
		}()
	}
	apps := map[string]*app{}
	for range natsconn.Roles {
		r := <-results
		if r.err != nil {
			t.Errorf("start %s: %v", r.role, r.err)
			continue
		}
		apps[r.role] = r.app
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.app.Stop(ctx); err != nil {
				t.Errorf("Stop %s: %v", r.role, err)
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	for role, a := range apps {
		select {
		case <-a.ready:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s not ready after 20s", role)
		}
	}

	c := p.httpClient()
	in, rd := "https://"+apps["ingest"].HTTPAddr(), "https://"+apps["api"].HTTPAddr()
	code, body := doWith(t, c, http.MethodPost, in+"/v1/pulses", `{"service":"nightly","next_in":0.2}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses over HTTPS = %d %s, want 202", code, body)
	}
	waitStatus(t, c, rd, "nightly", "down")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Error("HTTPS without the CA succeeded, want a certificate error")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS without the CA: %v, want a certificate error", err)
	}
	if nc, err := nats.Connect(url, nats.UserInfo("api", pw["api"]), nats.ClientCert(p.ClientCert, p.ClientKey), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("NATS without the CA connected, want a certificate error")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("api", pw["api"]), nats.RootCAs(p.CAFile), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("NATS without a client certificate connected, want a refusal")
	}
	// The api's identity reads but cannot write: the server refuses a
	// pulse record published with its user.
	violations := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo("api", pw["api"]), nats.RootCAs(p.CAFile), nats.ClientCert(p.ClientCert, p.ClientKey),
		nats.CustomInboxPrefix(natsconn.RoleInbox("api")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(vigil.PulseSubject("nightly"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), vigil.PulseSubject("nightly")) {
			t.Errorf("api publishes a pulse record: %v, want a permissions violation", err)
		}
	case <-ctx.Done():
		t.Error("the api identity published a pulse record without a permissions violation")
	}
}
