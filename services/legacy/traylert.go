package legacy

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/eax"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/vigil-monitor/vigil"
)

// TraylertConfig configures the Traylert surface (IngoKl/Traylert,
// compat.md §1), after traylert.ini.
type TraylertConfig struct {
	// AES wraps GET / in the AES-EAX envelope ([CRYPTO] aes; default on:
	// the legacy client only works with it).
	AES *bool `yaml:"aes"`
	// Key is the AES key: its UTF-8 bytes, 16, 24 or 32 of them
	// ([CRYPTO] encryption_key, not hex-decoded).
	Key string `yaml:"key"`
	// DiskPath is the path whose file system's free space is reported
	// ([SERVER] monitored_disc, default ".").
	DiskPath string `yaml:"disk_path"`
	// Allow lists the client addresses or CIDR prefixes that may POST
	// /alert ([ALERTS] alert_ips_whitelist, default loopback). Real prefix
	// matching replaces the original's substring test.
	Allow []string `yaml:"allow"`
	// QueueLength is how many alerts GET / shows, oldest first
	// ([ALERTS] alert_queue_length, default 2).
	QueueLength int `yaml:"queue_length"`
	// LowDisk is the free/used ratio under which "Disc space is running
	// low!" is raised, once per change of state ([ALERTS]
	// threshold_min_disc_space, default 0.2; 0 turns it off).
	LowDisk *float64 `yaml:"low_disk"`
	// Service names the vigil service of Traylert alerts (default
	// "traylert"); the ring buffer is its latest manual alerts, shared by
	// every replica.
	Service string `yaml:"service"`
	// TimeZone is the zone of the alert timestamps (default the server's).
	TimeZone string `yaml:"time_zone"`
}

// LowDiskText is the original's low-disk alert.
const LowDiskText = "Disc space is running low!"

// Traylert serves GET / (system info, optionally encrypted) and POST
// /alert (a vigil manual alert, so it also goes out by mail or Pushover).
type Traylert struct {
	cfg   TraylertConfig
	be    *Backend
	log   *slog.Logger
	loc   *time.Location
	allow []netip.Prefix
	aead  interface {
		Seal(dst, nonce, plaintext, adata []byte) []byte
		NonceSize() int
	}

	mu  sync.Mutex
	low bool // the disk was low at the last check
}

// NewTraylert returns the Traylert surface; it fails on a bad key, prefix
// or time zone.
func NewTraylert(cfg TraylertConfig, be *Backend, log *slog.Logger) (*Traylert, error) {
	if cfg.AES == nil {
		on := true
		cfg.AES = &on
	}
	if cfg.DiskPath == "" {
		cfg.DiskPath = "."
	}
	if cfg.Allow == nil {
		cfg.Allow = []string{"127.0.0.1/32", "::1/128"}
	}
	if cfg.QueueLength <= 0 {
		cfg.QueueLength = 2
	}
	if cfg.LowDisk == nil {
		d := 0.2
		cfg.LowDisk = &d
	}
	if cfg.Service == "" {
		cfg.Service = "traylert"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Traylert{cfg: cfg, be: be, log: log.With("component", "legacy-traylert"), loc: time.Local}
	if cfg.TimeZone != "" {
		loc, err := time.LoadLocation(cfg.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("traylert: time zone: %w", err)
		}
		t.loc = loc
	}
	for _, a := range cfg.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return nil, fmt.Errorf("traylert: allow %q is neither an address nor a CIDR prefix", a)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		t.allow = append(t.allow, p.Masked())
	}
	if *cfg.AES {
		block, err := aes.NewCipher([]byte(cfg.Key))
		if err != nil {
			return nil, fmt.Errorf("traylert: key must be 16, 24 or 32 bytes of UTF-8: %w", err)
		}
		// pycryptodome's EAX defaults: 16-byte nonce, 16-byte tag.
		a, err := eax.NewEAXWithNonceAndTagSize(block, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("traylert: eax: %w", err)
		}
		t.aead = a
	}
	return t, nil
}

func (t *Traylert) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		t.info(w, r)
	case r.URL.Path == "/alert" && r.Method == http.MethodPost:
		t.alert(w, r)
	case r.URL.Path == "/alert" || r.URL.Path == "/":
		w.WriteHeader(http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

func (t *Traylert) allowed(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// alert serves POST /alert: 401 for a client outside the allow list, 400
// without a form field "alert", else 200 with an empty body once stored.
func (t *Traylert) alert(w http.ResponseWriter, r *http.Request) {
	if !t.allowed(r) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		_ = r.ParseMultipartForm(1 << 20) // a bad form has no "alert"
	}
	text := r.PostFormValue("alert")
	if _, ok := r.PostForm["alert"]; !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := t.raise(r.Context(), text); err != nil {
		t.log.Warn("traylert alert not stored", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (t *Traylert) raise(ctx context.Context, text string) error {
	title := text
	if title == "" {
		title = "(empty)"
	}
	if len(title) > vigil.MaxTitleLen {
		title = title[:vigil.MaxTitleLen]
	}
	_, err := t.be.Intake.StoreAlert(ctx, vigil.ManualAlert{Service: t.cfg.Service, Title: title, Message: text, Level: vigil.LevelWarning})
	return err
}

// info serves GET /: the system info document, encrypted when AES is on.
// The low-disk check runs after the document is built, as the original,
// so its alert shows in the next answer; it is raised once per change of
// state (fixed: the original repeated it on every poll).
func (t *Traylert) info(w http.ResponseWriter, r *http.Request) {
	doc, ratio, err := t.document(r.Context())
	if err != nil {
		t.log.Warn("traylert system info", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body := doc
	if t.aead != nil {
		body = t.seal(doc)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(body) // the client is gone
	if ratio >= 0 && *t.cfg.LowDisk > 0 {
		low := ratio < *t.cfg.LowDisk
		t.mu.Lock()
		changed := low && !t.low
		t.low = low
		t.mu.Unlock()
		if changed {
			if err := t.raise(r.Context(), LowDiskText); err != nil {
				t.log.Warn("low-disk alert not stored", "err", err)
			}
		}
	}
}

// seal returns the jsonpickle envelope of plain: {"nonce", "tag",
// "ciphertext"}, each {"py/b64": standard base64 without newlines}.
func (t *Traylert) seal(plain []byte) []byte {
	nonce := make([]byte, t.aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	sealed := t.aead.Seal(nil, nonce, plain, nil)
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `{"nonce": {"py/b64": "%s"}, "tag": {"py/b64": "%s"}, "ciphertext": {"py/b64": "%s"}}`,
		b64(nonce), b64(tag), b64(ct))
}

// document builds the §1.4 JSON (Python json.dumps with ensure_ascii=False
// and its default separators) and returns the disk's free/used ratio (-1
// when unknown).
func (t *Traylert) document(ctx context.Context) ([]byte, float64, error) {
	du, err := disk.UsageWithContext(ctx, t.cfg.DiskPath)
	if err != nil {
		return nil, -1, fmt.Errorf("disk usage of %q: %w", t.cfg.DiskPath, err)
	}
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("memory: %w", err)
	}
	ratio := -1.0
	pct := 0.0
	if du.Used > 0 {
		ratio = float64(du.Free) / float64(du.Used)
		pct = math.RoundToEven(ratio * 100)
	}
	alerts, err := t.recent(ctx)
	if err != nil {
		return nil, -1, err
	}
	b := []byte(`{"discspace_free (GB)": `)
	b = appendPyString(b, pyFloat(math.Round(float64(du.Free)/(1<<30)*100)/100)+" ("+strconv.FormatFloat(pct, 'f', 0, 64)+"%)")
	b = append(b, `, "memory": `...)
	b = appendPyString(b, pyFloat(math.Round(vm.UsedPercent*10)/10)+" %")
	b = append(b, `, "alerts": [`...)
	for i, a := range alerts {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '[')
		b = appendPyString(b, a[0])
		b = append(b, ", "...)
		b = appendPyString(b, a[1])
		b = append(b, ']')
	}
	b = append(b, "]}"...)
	return b, ratio, nil
}

// recent returns the ring buffer: the last QueueLength alerts of the
// Traylert service, oldest first, as [local time, text].
func (t *Traylert) recent(ctx context.Context) ([][2]string, error) {
	q := url.Values{}
	q.Set("service_exact", t.cfg.Service)
	q.Set("kind", string(vigil.AlertManual))
	q.Set("limit", strconv.Itoa(t.cfg.QueueLength))
	var p page[vigil.Alert]
	if err := t.be.get(ctx, "/v1/alerts", q, &p); err != nil {
		return nil, err
	}
	out := make([][2]string, 0, len(p.Items))
	for i := len(p.Items) - 1; i >= 0; i-- {
		a := p.Items[i]
		out = append(out, [2]string{a.At.In(t.loc).Format(humanLayout), a.Message})
	}
	return out, nil
}

// pyFloat formats f like Python's float repr for the values used here:
// shortest form, always with a decimal point.
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// appendPyString appends s as json.dumps(ensure_ascii=False) does: raw
// UTF-8, with quotes, backslashes and control characters escaped.
func appendPyString(b []byte, s string) []byte {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, strings.TrimSuffix(sb.String(), "\n")...)
}
