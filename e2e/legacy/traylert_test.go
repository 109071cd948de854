package legacy

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// traylertPoll is the request the Traylert client sends every refresh_time:
// requests.get(endpoint_override) with requests' default headers.
const traylertPoll = `GET / HTTP/1.1
Host: 127.0.0.1:5000
User-Agent: python-requests/2.21.0
Accept-Encoding: gzip, deflate
Accept: */*
Connection: close

`

// traylertAlert is a POST /alert as requests.post(url, data={"alert": text})
// sends it: a urlencoded form.
func traylertAlert(text string) string {
	body := url.Values{"alert": {text}}.Encode()
	return fmt.Sprintf("POST /alert HTTP/1.1\nHost: 127.0.0.1:5000\nUser-Agent: python-requests/2.21.0\n"+
		"Accept-Encoding: gzip, deflate\nAccept: */*\nConnection: close\nContent-Length: %d\n"+
		"Content-Type: application/x-www-form-urlencoded\n\n%s", len(body), body)
}

// eaxOpen decrypts and verifies an EAX message (Bellare, Rogaway, Wagner,
// "The EAX Mode of Operation", FSE 2004) written from the paper on
// crypto/aes, independent of the server's ProtonMail/go-crypto:
// N = OMAC⁰(nonce), H = OMAC¹(header), C = OMAC²(ciphertext),
// tag = N ⊕ C ⊕ H, plaintext = CTR_N(ciphertext).
func eaxOpen(key, nonce, header, ct, tag []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	double := func(b []byte) []byte { // multiplication by x in GF(2^128)
		out := make([]byte, 16)
		for i := range 15 {
			out[i] = b[i]<<1 | b[i+1]>>7
		}
		out[15] = b[15] << 1
		if b[0]&0x80 != 0 {
			out[15] ^= 0x87
		}
		return out
	}
	l := make([]byte, 16)
	block.Encrypt(l, l)
	k1 := double(l)
	k2 := double(k1)
	cmac := func(m []byte) []byte { // OMAC1 = CMAC (NIST SP 800-38B)
		n := max(1, (len(m)+15)/16)
		last := make([]byte, 16)
		if len(m) > 0 && len(m)%16 == 0 {
			subtle.XORBytes(last, m[(n-1)*16:], k1)
		} else {
			r := copy(last, m[(n-1)*16:])
			last[r] = 0x80
			subtle.XORBytes(last, last, k2)
		}
		x := make([]byte, 16)
		for i := 0; i < n-1; i++ {
			subtle.XORBytes(x, x, m[i*16:i*16+16])
			block.Encrypt(x, x)
		}
		subtle.XORBytes(x, x, last)
		block.Encrypt(x, x)
		return x
	}
	omac := func(t byte, m []byte) []byte {
		in := make([]byte, 16, 16+len(m))
		in[15] = t
		return cmac(append(in, m...))
	}
	n, h, c := omac(0, nonce), omac(1, header), omac(2, ct)
	want := make([]byte, 16)
	subtle.XORBytes(want, n, h)
	subtle.XORBytes(want, want, c)
	if len(tag) != 16 || subtle.ConstantTimeCompare(want, tag) != 1 {
		return nil, errors.New("MAC check failed")
	}
	out := make([]byte, len(ct))
	cipher.NewCTR(block, n).XORKeyStream(out, ct)
	return out, nil
}

// TestEAXVectors checks eaxOpen on the EAX paper's test vectors, so the
// cases below decrypt with a known-good implementation.
func TestEAXVectors(t *testing.T) {
	for _, v := range []struct{ msg, key, nonce, header, cipher string }{
		{"", "233952DEE4D5ED5F9B9C6D6FF80FF478", "62EC67F9C3A4A407FCB2A8C49031A8B3", "6BFB914FD07EAE6B", "E037830E8389F27B025A2D6527E79D01"},
		{"F7FB", "91945D3F4DCBEE0BF45EF52255F095A4", "BECAF043B0A23D843194BA972C66DEBD", "FA3BFD4806EB53FA", "19DD5C4C9331049D0BDAB0277408F67967E5"},
		{"1A47CB4933", "01F74AD64077F2E704C0F60ADA3DD523", "70C3DB4F0D26368400A10ED05D2BFF5E", "234A3463C1264AC6", "D851D5BAE03A59F238A23E39199DC9266626C40F80"},
	} {
		ct := unhex(t, v.cipher)
		got, err := eaxOpen(unhex(t, v.key), unhex(t, v.nonce), unhex(t, v.header), ct[:len(ct)-16], ct[len(ct)-16:])
		if err != nil || !bytes.Equal(got, unhex(t, v.msg)) {
			t.Errorf("eaxOpen(vector %s) = %x, %v; want %s", v.key, got, err, v.msg)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelope is the jsonpickle body: each field {"py/b64": base64}.
type envelope struct {
	Nonce, Tag, Ciphertext []byte
}

// parseEnvelope checks the envelope's shape (exactly nonce, tag and
// ciphertext, each a py/b64 tag of standard base64 without newlines) and
// decodes it.
func parseEnvelope(body string) (*envelope, error) {
	var m map[string]map[string]string
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil, fmt.Errorf("envelope: %w in %q", err, body)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"ciphertext", "nonce", "tag"}) {
		return nil, fmt.Errorf("envelope keys %v, want nonce, tag, ciphertext", keys)
	}
	var e envelope
	for k, dst := range map[string]*[]byte{"nonce": &e.Nonce, "tag": &e.Tag, "ciphertext": &e.Ciphertext} {
		v, ok := m[k]["py/b64"]
		if !ok || len(m[k]) != 1 || strings.ContainsAny(v, "\n ") {
			return nil, fmt.Errorf("envelope %s = %v, want {\"py/b64\": base64 without newlines}", k, m[k])
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("envelope %s: %w", k, err)
		}
		*dst = b
	}
	if len(e.Nonce) != 16 || len(e.Tag) != 16 {
		return nil, fmt.Errorf("nonce %d bytes, tag %d bytes, want 16 and 16", len(e.Nonce), len(e.Tag))
	}
	return &e, nil
}

// info is Traylert's system-info document.
type info struct {
	Disk   string      `json:"discspace_free (GB)"`
	Memory string      `json:"memory"`
	Alerts [][2]string `json:"alerts"`
	raw    []byte
}

var (
	diskRE  = regexp.MustCompile(`^\d+\.\d+ \(\d+%\)$`)
	memRE   = regexp.MustCompile(`^\d+(\.\d+)? %$`)
	stampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
)

// parseInfo checks the document's keys (exactly the three, in the
// original's order) and formats, and decodes it.
func parseInfo(plain []byte) (*info, error) {
	dec := json.NewDecoder(bytes.NewReader(plain))
	var keys []string
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if want := []string{"discspace_free (GB)", "memory", "alerts"}; !slices.Equal(keys, want) {
		return nil, fmt.Errorf("document keys %q, want %q", keys, want)
	}
	in := &info{raw: plain}
	if err := json.Unmarshal(plain, in); err != nil {
		return nil, err
	}
	if !diskRE.MatchString(in.Disk) || !memRE.MatchString(in.Memory) {
		return nil, fmt.Errorf("disk %q or memory %q out of format", in.Disk, in.Memory)
	}
	for _, a := range in.Alerts {
		if !stampRE.MatchString(a[0]) {
			return nil, fmt.Errorf("alert time %q is not YYYY-MM-DD HH:MM:SS", a[0])
		}
	}
	return in, nil
}

// poll is one Traylert client poll of addr: the decrypted document.
func poll(t *testing.T, addr string) *info {
	t.Helper()
	r := raw(t, addr, false, traylertPoll)
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q, want 200 text/html; charset=utf-8", r.code, r.header.Get("Content-Type"))
	}
	e, err := parseEnvelope(r.body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := eaxOpen([]byte(traylertKey), e.Nonce, nil, e.Ciphertext, e.Tag)
	if err != nil {
		t.Fatalf("decrypt with the key: %v", err)
	}
	in, err := parseInfo(plain)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// lastAlerts polls until the ring buffer's texts are want.
func lastAlerts(t *testing.T, addr string, want ...string) *info {
	t.Helper()
	var in *info
	eventually(t, wait, func() error {
		in = poll(t, addr)
		var got []string
		for _, a := range in.Alerts {
			got = append(got, a[1])
		}
		if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
			return fmt.Errorf("alerts %q, want them to end with %q", got, want)
		}
		return nil
	})
	return in
}

func TestCase01TraylertInfoEncrypted(t *testing.T) {
	p := mainStack(t)
	in := poll(t, p.listener(t, "combined"))
	if in.Alerts == nil {
		t.Errorf("alerts = null, want an array")
	}
}

func TestCase02TraylertFreshNonceWrongKey(t *testing.T) {
	p := mainStack(t)
	addr := p.listener(t, "combined")
	var bodies []*envelope
	for range 2 {
		r := raw(t, addr, false, traylertPoll)
		e, err := parseEnvelope(r.body)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, e)
	}
	if bytes.Equal(bodies[0].Nonce, bodies[1].Nonce) {
		t.Errorf("two polls share nonce %x", bodies[0].Nonce)
	}
	wrong := []byte("00000000000000000000000000000000")
	if _, err := eaxOpen(wrong, bodies[0].Nonce, nil, bodies[0].Ciphertext, bodies[0].Tag); err == nil {
		t.Errorf("a different 32-byte key passed the tag check")
	}
}

func TestCase04TraylertAlert(t *testing.T) {
	p := mainStack(t)
	addr := p.listener(t, "combined")
	if r := raw(t, addr, false, traylertAlert("Backup failed")); r.code != http.StatusOK || r.body != "" {
		t.Fatalf("POST /alert = %d %q, want 200 with an empty body", r.code, r.body)
	}
	in := lastAlerts(t, addr, "Backup failed")
	last := in.Alerts[len(in.Alerts)-1]
	at, err := time.ParseInLocation("2006-01-02 15:04:05", last[0], time.Local)
	if err != nil || time.Since(at) > time.Hour || time.Until(at) > time.Minute {
		t.Errorf("alert time %q is not about now (server local time): %v", last[0], err)
	}
	// A Traylert alert is a vigil manual alert (so it can go out by mail or Pushover).
	eventually(t, wait, func() error {
		var pg struct {
			Items []struct{ Kind, Service, Message string }
		}
		if err := getJSON(t, p.proc, "/v1/alerts?service_exact=traylert&kind=manual&limit=1", &pg); err != nil {
			return err
		}
		if len(pg.Items) != 1 || pg.Items[0].Message != "Backup failed" {
			return fmt.Errorf("vigil alerts = %+v", pg.Items)
		}
		return nil
	})
}

func TestCase05TraylertAllowList(t *testing.T) {
	p := mainStack(t)
	addr := p.listener(t, "combined")
	if r := raw(t, addr, false, traylertAlert("case 5 marker")); r.code != http.StatusOK {
		t.Fatalf("POST /alert = %d", r.code)
	}
	before := lastAlerts(t, addr, "case 5 marker").Alerts
	// 127.0.0.2 is a loopback address outside the allow list [127.0.0.1, ::1].
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2: %v", err)
	}
	defer c.Close()
	if r := rawOn(t, c, traylertAlert("intruder")); r.code != http.StatusUnauthorized {
		t.Errorf("POST /alert from 127.0.0.2 = %d, want 401", r.code)
	}
	if after := poll(t, addr).Alerts; !slices.Equal(after, before) {
		t.Errorf("alerts changed by a refused post: %q → %q", before, after)
	}
	for name, req := range map[string]string{
		"other field": "POST /alert HTTP/1.1\nHost: x\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 7\nConnection: close\n\nalarm=x",
		"JSON body":   "POST /alert HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 13\nConnection: close\n\n{\"alert\":\"x\"}",
		"query only":  "POST /alert?alert=x HTTP/1.1\nHost: x\nContent-Length: 0\nConnection: close\n\n",
	} {
		if r := raw(t, addr, false, req); r.code != http.StatusBadRequest {
			t.Errorf("POST /alert with %s = %d, want 400", name, r.code)
		}
	}
}

func TestCase06TraylertQueueLength(t *testing.T) {
	p := mainStack(t)
	addr := p.listener(t, "combined")
	for _, a := range []string{"A", "B", "C"} {
		if r := raw(t, addr, false, traylertAlert(a)); r.code != http.StatusOK {
			t.Fatalf("POST /alert %s = %d", a, r.code)
		}
	}
	in := lastAlerts(t, addr, "B", "C")
	if len(in.Alerts) != 2 {
		t.Errorf("alerts = %q, want exactly the last two (queue_length 2)", in.Alerts)
	}
}

func TestCase07TraylertNonASCII(t *testing.T) {
	p := mainStack(t)
	addr := p.listener(t, "combined")
	if r := raw(t, addr, false, traylertAlert("Größe ✓")); r.code != http.StatusOK {
		t.Fatalf("POST /alert = %d", r.code)
	}
	in := lastAlerts(t, addr, "Größe ✓")
	if !bytes.Contains(in.raw, []byte(`"Größe ✓"]`)) {
		t.Errorf("plaintext %q does not carry the text as raw UTF-8 (ensure_ascii=False)", in.raw)
	}
}

// plainYAML is a second vigil: Traylert without AES and with a low-disk
// threshold above any real free/used ratio, watchTower on the combined
// listener (password "test", the JS client's), System Monitor on its own
// listener under /sysmon, fleet on the combined listener polling a stub
// fleetctl with -e.
const plainYAML = `http_addr: 127.0.0.1:0
log: {level: info, format: text}
nats: {listen: "off"}
legacy:
  addr: 127.0.0.1:0
  watchtower: {password: test}
  traylert: {aes: false, low_disk: 1000000, queue_length: 2}
  sysmon: {addr: 127.0.0.1:0, prefix: /sysmon}
  fleet:
    addr: "off"
    enabled: true
    fleetctl: %[1]s
    endpoint: 10.0.0.5
    unit_every: 200ms
    machine_every: 300ms
`

var (
	plainOnce sync.Once
	plain     struct {
		p       *proc
		argsLog string
		// firstPoll is the body of the process's first GET / (case 9).
		firstPoll string
		err       error
	}
)

// plainStack starts the second vigil once, and polls its Traylert GET /
// once; it stops with the package.
func plainStack(t *testing.T) (*proc, string) {
	t.Helper()
	plainOnce.Do(func() {
		stub, argsLog, err := installStub("plain")
		if err != nil {
			plain.err = err
			return
		}
		plain.argsLog = argsLog
		plain.p, plain.err = startVigil("plain", fmt.Sprintf(plainYAML, stub), "FLEETCTL_ARGS_LOG="+argsLog)
		if plain.err != nil {
			return
		}
		keep(plain.p)
		resp, err := client.Get("http://" + plain.p.addr["combined"] + "/")
		if err != nil {
			plain.err = err
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		plain.firstPoll, plain.err = string(b), err
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.p, plain.argsLog
}

func TestCase08TraylertPlain(t *testing.T) {
	p, _ := plainStack(t)
	addr := p.listener(t, "combined")
	r := raw(t, addr, false, traylertPoll)
	if r.code != http.StatusOK {
		t.Fatalf("GET / = %d", r.code)
	}
	if _, err := parseInfo([]byte(r.body)); err != nil {
		t.Errorf("plain GET /: %v in %q", err, r.body)
	}
	if !strings.HasPrefix(r.body, `{"discspace_free (GB)": "`) {
		t.Errorf("plain body %q is not json.dumps with its default separators", r.body)
	}
	if r := raw(t, addr, false, "GET /alert HTTP/1.1\nHost: x\nConnection: close\n\n"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /alert = %d, want 405", r.code)
	}
}

func TestCase09TraylertLowDisk(t *testing.T) {
	p, _ := plainStack(t)
	addr := p.listener(t, "combined")
	texts := func(body string) []string {
		in, err := parseInfo([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, a := range in.Alerts {
			s = append(s, a[1])
		}
		return s
	}
	if first := texts(plain.firstPoll); slices.Contains(first, "Disc space is running low!") {
		t.Fatalf("first GET / already has the low-disk alert: %q", first)
	}
	eventually(t, wait, func() error {
		if got := texts(raw(t, addr, false, traylertPoll).body); !slices.Contains(got, "Disc space is running low!") {
			return fmt.Errorf("alerts %q", got)
		}
		return nil
	})
	// Raised once per change of state (the original repeated it on every poll).
	for range 3 {
		raw(t, addr, false, traylertPoll)
	}
	var pg struct{ Items []struct{ Message string } }
	if err := getJSON(t, p, "/v1/alerts?service_exact=traylert&kind=manual", &pg); err != nil {
		t.Fatal(err)
	}
	if len(pg.Items) != 1 || pg.Items[0].Message != "Disc space is running low!" {
		t.Errorf("traylert alerts after 5 polls = %+v, want the low-disk alert once", pg.Items)
	}
}
