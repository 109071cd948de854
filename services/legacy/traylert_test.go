package legacy_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

const traylertKey = "a18def0e87c7de1538b7ba4de39ae0c4" // the sample traylert.ini's key

// eaxOpen is an EAX decryption written from the paper (Bellare, Rogaway,
// Wagner, "The EAX Mode of Operation", 2004) with crypto/aes only, so the
// server's envelope is checked by an implementation it does not share:
// N' = OMAC0(N), H' = OMAC1(""), C' = OMAC2(C), tag = N'^C'^H', M = CTR(N', C).
func eaxOpen(key, nonce, ct, tag []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	omac := func(t byte, m []byte) []byte {
		dbl := func(in []byte) []byte {
			out := make([]byte, 16)
			var carry byte
			for i := 15; i >= 0; i-- {
				out[i] = in[i]<<1 | carry
				carry = in[i] >> 7
			}
			if in[0]&0x80 != 0 {
				out[15] ^= 0x87
			}
			return out
		}
		l := make([]byte, 16)
		b.Encrypt(l, l)
		k1 := dbl(l)
		k2 := dbl(k1)
		msg := append(append(make([]byte, 15), t), m...)
		var last []byte
		if len(msg)%16 == 0 {
			last = make([]byte, 16)
			copy(last, msg[len(msg)-16:])
			subtle.XORBytes(last, last, k1)
		} else {
			last = make([]byte, 16)
			n := copy(last, msg[len(msg)/16*16:])
			last[n] = 0x80
			subtle.XORBytes(last, last, k2)
		}
		full := msg[:(len(msg)-1)/16*16]
		x := make([]byte, 16)
		for i := 0; i < len(full); i += 16 {
			subtle.XORBytes(x, x, full[i:i+16])
			b.Encrypt(x, x)
		}
		subtle.XORBytes(x, x, last)
		b.Encrypt(x, x)
		return x
	}
	n, h, c := omac(0, nonce), omac(1, nil), omac(2, ct)
	want := make([]byte, 16)
	subtle.XORBytes(want, n, c)
	subtle.XORBytes(want, want, h)
	if subtle.ConstantTimeCompare(want, tag) != 1 {
		return nil, fmt.Errorf("MAC check failed")
	}
	m := make([]byte, len(ct))
	cipher.NewCTR(b, n).XORKeyStream(m, ct)
	return m, nil
}

type envelope struct {
	Nonce, Tag, Ciphertext struct {
		B64 string `json:"py/b64"`
	}
}

func newTraylert(t *testing.T, cfg legacy.TraylertConfig) string {
	t.Helper()
	st := newStack(t)
	if cfg.Key == "" {
		cfg.Key = traylertKey
	}
	tr, err := legacy.NewTraylert(cfg, st.be, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr)
	t.Cleanup(srv.Close)
	return srv.URL
}

// requestsHeaders are the Python requests library's defaults.
var requestsHeaders = [][2]string{{"User-Agent", "python-requests/2.25.1"}, {"Accept-Encoding", "gzip, deflate"}, {"Accept", "*/*"}, {"Connection", "keep-alive"}}

// poll GETs / and returns the envelope's parts and the decrypted document.
func poll(t *testing.T, u string, key string) (env envelope, doc map[string]any, plain []byte) {
	t.Helper()
	code, h, body := do(t, "GET", u+"/", requestsHeaders, "")
	if code != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %v", code, h)
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("envelope %q: %v", body, err)
	}
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nonce, tag := dec(env.Nonce.B64), dec(env.Tag.B64)
	if len(nonce) != 16 || len(tag) != 16 {
		t.Fatalf("nonce %d bytes, tag %d bytes", len(nonce), len(tag))
	}
	plain, err := eaxOpen([]byte(key), nonce, dec(env.Ciphertext.B64), tag)
	if err != nil {
		return env, nil, nil
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatalf("plaintext %q: %v", plain, err)
	}
	return env, doc, plain
}

func checkDoc(t *testing.T, doc map[string]any) {
	t.Helper()
	if len(doc) != 3 {
		t.Errorf("keys = %v", doc)
	}
	if s, _ := doc["discspace_free (GB)"].(string); !regexp.MustCompile(`^\d+\.\d+ \(\d+%\)$`).MatchString(s) {
		t.Errorf("disk = %q", s)
	}
	if s, _ := doc["memory"].(string); !regexp.MustCompile(`^\d+(\.\d+)? %$`).MatchString(s) {
		t.Errorf("memory = %q", s)
	}
	if _, ok := doc["alerts"].([]any); !ok {
		t.Errorf("alerts = %v", doc["alerts"])
	}
}

func lastAlerts(doc map[string]any) []string {
	var out []string
	for _, a := range doc["alerts"].([]any) {
		p := a.([]any)
		out = append(out, p[1].(string))
	}
	return out
}

var formHeaders = append([][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, requestsHeaders...)

// Cases 1, 2, 4, 5, 6, 7.
func TestTraylertEncrypted(t *testing.T) {
	off := 0.0
	u := newTraylert(t, legacy.TraylertConfig{LowDisk: &off})
	env1, doc, plain := poll(t, u, traylertKey)
	if doc == nil {
		t.Fatal("tag check failed with the right key")
	}
	checkDoc(t, doc)
	if !bytes.HasPrefix(plain, []byte(`{"discspace_free (GB)": "`)) {
		t.Errorf("key order / separators: %q", plain)
	}
	env2, _, _ := poll(t, u, traylertKey)
	if env1.Nonce.B64 == env2.Nonce.B64 {
		t.Error("two answers share a nonce")
	}
	if _, doc, _ := poll(t, u, strings.Repeat("k", 32)); doc != nil {
		t.Error("a different key passed the tag check")
	}
	// Cases 4, 6, 7.
	for _, a := range []string{"A", "Backup failed", "Größe ✓"} {
		if code, _, b := do(t, "POST", u+"/alert", formHeaders, "alert="+url.QueryEscape(a)); code != http.StatusOK || b != "" {
			t.Fatalf("POST /alert = %d %q", code, b)
		}
	}
	bustest.Eventually(t, func() error {
		_, doc, _ := poll(t, u, traylertKey)
		if got := strings.Join(lastAlerts(doc), "|"); got != "Backup failed|Größe ✓" {
			return fmt.Errorf("alerts = %q", got)
		}
		ts := doc["alerts"].([]any)[1].([]any)[0].(string)
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(ts) {
			return fmt.Errorf("timestamp %q", ts)
		}
		return nil
	})
	// Case 5: no alert field → 400 (JSON body, query string only).
	for _, c := range []struct {
		hdr        [][2]string
		path, body string
	}{
		{formHeaders, "/alert", "other=x"},
		{[][2]string{{"Content-Type", "application/json"}}, "/alert", `{"alert":"x"}`},
		{formHeaders, "/alert?alert=x", ""},
	} {
		if code, _, _ := do(t, "POST", u+c.path, c.hdr, c.body); code != http.StatusBadRequest {
			t.Errorf("%s %q = %d, want 400", c.path, c.body, code)
		}
	}
}

// Case 5: a client outside the allow list.
func TestTraylertAllowList(t *testing.T) {
	u := newTraylert(t, legacy.TraylertConfig{Allow: []string{"10.0.0.0/8", "192.0.2.7"}})
	if code, _, _ := do(t, "POST", u+"/alert", formHeaders, "alert=x"); code != http.StatusUnauthorized {
		t.Errorf("POST from 127.0.0.1 = %d, want 401", code)
	}
	if _, doc, _ := poll(t, u, traylertKey); len(doc["alerts"].([]any)) != 0 {
		t.Errorf("alerts changed: %v", doc)
	}
}

// Cases 8, 9.
func TestTraylertPlainAndLowDisk(t *testing.T) {
	off, high := false, 1e12
	u := newTraylert(t, legacy.TraylertConfig{AES: &off, LowDisk: &high})
	_, _, body := do(t, "GET", u+"/", requestsHeaders, "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err, body)
	}
	checkDoc(t, doc)
	if len(doc["alerts"].([]any)) != 0 {
		t.Errorf("first answer already has an alert: %v", doc)
	}
	if code, _, _ := do(t, "GET", u+"/alert", nil, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /alert = %d", code)
	}
	bustest.Eventually(t, func() error {
		_, _, body := do(t, "GET", u+"/", requestsHeaders, "")
		if !strings.Contains(body, legacy.LowDiskText) {
			return fmt.Errorf("no low-disk alert: %s", body)
		}
		return nil
	})
	// raised once per change of state, not on every poll
	_, _, body = do(t, "GET", u+"/", requestsHeaders, "")
	if n := strings.Count(body, legacy.LowDiskText); n != 1 {
		t.Errorf("low-disk alert %d times: %s", n, body)
	}
}
