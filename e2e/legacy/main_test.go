// Package legacy runs every numbered case of compat.md's "Compatibility test
// cases" against the real vigil binary (vigil all with every legacy surface
// on), over the wire, with the bytes the old clients send: header names and
// casing, JSON or form bodies, the Java client's string levels. Cases 3 and
// 27 also run the legacy clients' logic in Python 3 and Java 17 when those
// are installed (testdata/). docs/legacy.md maps each case to its test.
package legacy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wait bounds every wait for an event of the binary.
const wait = 30 * time.Second

const (
	// wtPassword is the sample config's watchTower password (clientPython/test.py).
	wtPassword = "change me"
	// traylertKey is the sample traylert.ini's key: its 32 UTF-8 bytes are an AES-256 key.
	traylertKey = "a18def0e87c7de1538b7ba4de39ae0c4"
	// pushoverToken is the application token of the fake Pushover API.
	pushoverToken = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
	// userKey and defaultKey are well-formed Pushover user keys: a pulse's
	// alertTarget and watchTower's alert.defaultTarget.
	userKey    = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
	defaultKey = "gznej3rKEVAvPUxu9vvNnqpmZpokzF"
)

var (
	binary  string
	tmpRoot string
	// certFile and keyFile are the watchTower TLS listener's self-signed
	// certificate and key; caPool trusts the certificate.
	certFile, keyFile string
	caPool            *x509.CertPool
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if tmpRoot, err = os.MkdirTemp("", "vigil-e2e-legacy"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmpRoot)
		binary = filepath.Join(tmpRoot, "vigil")
		out, err := exec.Command("go", "build", "-o", binary, "../../cmd/vigil").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build vigil: %v\n%s", err, out)
			return 1
		}
		if err := writeCert(tmpRoot); err != nil {
			fmt.Fprintln(os.Stderr, "certificate:", err)
			return 1
		}
		client = newClient()
		defer stopShared()
		return m.Run()
	}()
	os.Exit(code)
}

// writeCert writes a self-signed ECDSA certificate for localhost and
// 127.0.0.1 (the original's config/server.crt) and its key.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	caPool = x509.NewCertPool()
	caPool.AddCert(cert)
	return nil
}

// proc is a running vigil all.
type proc struct {
	cmd  *exec.Cmd
	api  string            // base URL of vigil's own HTTP API
	addr map[string]string // legacy listener name → bound host:port
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

var (
	readyLine    = regexp.MustCompile(`msg="vigil ready" http_addr=(\S+)`)
	listenerLine = regexp.MustCompile(`msg="legacy listener".* listener=(\S+) addr=(\S+)`)
)

// startVigil runs vigil all with the YAML config yml (in its own data
// folder; env is added to the environment) and waits for "vigil ready".
// Every address in the config may be port 0: the bound ones are read from
// the log.
func startVigil(name, yml string, env ...string) (*proc, error) {
	dir, err := os.MkdirTemp(tmpRoot, name)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "vigil.yaml")
	yml = "data_dir: " + filepath.Join(dir, "data") + "\n" + yml
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "all", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, addr: map[string]string{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			if m := listenerLine.FindStringSubmatch(line); m != nil {
				p.addr[m[1]] = m[2]
			}
			p.mu.Unlock()
			if m := readyLine.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-ready:
		p.api = "http://" + a
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("vigil %s exited before ready:\n%s", name, p.logs())
	case <-time.After(wait):
		p.kill()
		return nil, fmt.Errorf("vigil %s not ready after %v:\n%s", name, wait, p.logs())
	}
}

// start is startVigil for one test: the process ends with the test.
func start(t *testing.T, name, yml string, env ...string) *proc {
	t.Helper()
	p, err := startVigil(name, yml, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("vigil %s log:\n%s", name, p.logs())
		}
	})
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// listener returns the bound address of legacy listener name.
func (p *proc) listener(t *testing.T, name string) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.addr[name]
	if a == "" {
		t.Fatalf("no legacy listener %q in the log (have %v)", name, p.addr)
	}
	return a
}

// kill stops vigil with SIGTERM (a clean stop) and waits for it; after
// wait it sends SIGKILL.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// pushoverMsg is one message the fake Pushover API received.
type pushoverMsg struct {
	User, Title, Message, Priority string
}

// fakePushover is Pushover's Message API (POST /1/messages.json, form
// fields token, user, title, message): it answers {"status":1} and keeps
// what it got.
type fakePushover struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []pushoverMsg
	change chan struct{}
}

func newFakePushover() *fakePushover {
	f := &fakePushover{change: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/1/messages.json" || r.ParseForm() != nil || r.PostForm.Get("token") != pushoverToken {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"status":0,"errors":["bad request"]}`)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, pushoverMsg{User: r.PostForm.Get("user"), Title: r.PostForm.Get("title"), Message: r.PostForm.Get("message"), Priority: r.PostForm.Get("priority")})
		f.mu.Unlock()
		select {
		case f.change <- struct{}{}:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":1,"request":"e2e"}`)
	}))
	return f
}

// to returns the messages to user whose title is title.
func (f *fakePushover) to(user, title string) []pushoverMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pushoverMsg
	for _, m := range f.got {
		if m.User == user && m.Title == title {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until ok holds, woken by each message.
func (f *fakePushover) waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for !ok() {
		select {
		case <-f.change:
		case <-deadline:
			t.Fatalf("waited %v for %s", wait, what)
		}
	}
}

// shared is the main vigil of the package: every legacy surface, watchTower
// on its own TLS listener, Traylert and System Monitor on the combined
// one, fleet drawn from vigil's own services and hosts on its own port.
type sharedStack struct {
	*proc
	pushover *fakePushover
	probe    *httptest.Server
	err      error
}

var (
	sharedOnce sync.Once
	shared     sharedStack
)

// mainYAML is the shared vigil's configuration: what a deployment that
// replaces all four tools on one host would write.
const mainYAML = `http_addr: %[10]s
log: {level: info, format: text}
nats: {listen: "off"}
notifier:
  pushover:
    token: %[1]s
    base_url: %[2]s/1/messages.json
legacy:
  addr: 127.0.0.1:0
  watchtower:
    addr: 127.0.0.1:0
    tls_cert: %[3]s
    tls_key: %[4]s
    password: %[5]q
    version: "7"
    events_presets: [{name: backups, service: "^backup", message: fail}]
    default_owner: {type: pushover, target: %[6]s}
    gui: http://%[10]s/gui/
    probes:
      - {service: site-probe, url: %[7]q, frequency: 1s, alert_type: pushover, alert_target: %[8]s}
  traylert:
    aes: true
    key: %[9]q
    allow: ["127.0.0.1", "::1"]
    queue_length: 2
    low_disk: 0
  sysmon: {enabled: true}
  fleet:
    addr: 127.0.0.1:0
`

func mainStack(t *testing.T) *sharedStack {
	t.Helper()
	sharedOnce.Do(func() {
		shared.pushover = newFakePushover()
		shared.probe = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		httpAddr, err := freeAddr()
		if err != nil {
			shared.err = err
			return
		}
		yml := fmt.Sprintf(mainYAML, pushoverToken, shared.pushover.srv.URL, certFile, keyFile, wtPassword,
			defaultKey, shared.probe.URL, userKey, traylertKey, httpAddr)
		shared.proc, shared.err = startVigil("main", yml)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return &shared
}

// stops are the package-wide vigils other than the shared one.
var (
	stopsMu sync.Mutex
	stops   []*proc
)

// keep stops p when the package's tests end.
func keep(p *proc) {
	stopsMu.Lock()
	stops = append(stops, p)
	stopsMu.Unlock()
}

func stopShared() {
	if shared.proc != nil {
		keep(shared.proc)
	}
	for _, p := range stops {
		p.kill()
		if os.Getenv("VIGIL_E2E_LOG") != "" {
			fmt.Fprint(os.Stderr, p.logs())
		}
	}
	if shared.pushover != nil {
		shared.pushover.srv.Close()
		shared.probe.Close()
	}
}

// freeAddr returns a loopback address with a free port (for the API, whose
// address the watchTower GUI redirect names).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// eventually runs check until it returns nil, at most within.
func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// response is what raw returns.
type response struct {
	code   int
	header http.Header
	body   string
}

// raw writes req exactly as given (request line, header names in their
// casing and order, body) on a new connection to addr, over TLS when
// useTLS (trusting the test's certificate), and reads one response.
// "\n" line ends in req become "\r\n" up to the blank line.
func raw(t *testing.T, addr string, useTLS bool, req string) response {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: caPool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return rawOn(t, c, req)
}

// rawOn is raw on an open connection c.
func rawOn(t *testing.T, c net.Conn, req string) response {
	t.Helper()
	head, body, ok := strings.Cut(req, "\n\n")
	if !ok {
		t.Fatalf("raw request without a blank line: %q", req)
	}
	wire := strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, wire); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", head, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// client is an HTTP/1.1 client (as every legacy client) that trusts the
// test's certificate and follows no redirect; TestMain makes it.
var client *http.Client

func newClient() *http.Client {
	return &http.Client{
		// A Transport with its own TLS config speaks HTTP/1.1 only.
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       wait,
	}
}

// do sends method url with headers hdr (names kept as written) and body.
func do(t *testing.T, method, u string, hdr [][2]string, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// getJSON GETs a path of vigil's own API and decodes the 200 answer.
func getJSON(t *testing.T, p *proc, path string, out any) error {
	t.Helper()
	r := do(t, "GET", p.api+path, nil, "")
	if r.code != http.StatusOK {
		return fmt.Errorf("GET %s = %d %s", path, r.code, r.body)
	}
	return json.Unmarshal([]byte(r.body), out)
}

// q escapes a query value.
func q(s string) string { return url.QueryEscape(s) }
