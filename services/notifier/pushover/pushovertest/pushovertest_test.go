package pushovertest_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/services/notifier/pushover/pushovertest"
)

func valid() url.Values {
	return url.Values{
		"token":   {pushovertest.Token},
		"user":    {pushovertest.User},
		"message": {"db-backup is down"},
	}
}

type result struct {
	Status  int               `json:"status"`
	Request string            `json:"request"`
	Receipt string            `json:"receipt"`
	Errors  []string          `json:"errors"`
	Fields  map[string]string `json:"-"`
}

func do(t *testing.T, srv *pushovertest.Server, method, contentType string, body []byte) (int, result, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	b, _ := json.Marshal(raw)
	var r result
	_ = json.Unmarshal(b, &r)
	r.Fields = map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok && s == "invalid" {
			r.Fields[k] = s
		}
	}
	return resp.StatusCode, r, resp.Header
}

func post(t *testing.T, srv *pushovertest.Server, f url.Values) (int, result) {
	t.Helper()
	code, r, _ := do(t, srv, http.MethodPost, "application/x-www-form-urlencoded", []byte(f.Encode()))
	return code, r
}

func TestAccepts(t *testing.T) {
	srv := pushovertest.New(t)
	f := valid()
	f.Set("title", "down")
	f.Set("priority", "2")
	f.Set("retry", "60")
	f.Set("expire", "3600")
	f.Set("sound", "siren")
	f.Set("timestamp", "1700000000")
	code, r, h := do(t, srv, http.MethodPost, "application/x-www-form-urlencoded", []byte(f.Encode()))
	if code != 200 || r.Status != 1 || len(r.Request) != 36 || len(r.Receipt) != 30 {
		t.Fatalf("answer %d %+v, want 200 status 1 with request and receipt", code, r)
	}
	if h.Get("X-Limit-App-Limit") != "10000" || h.Get("X-Limit-App-Remaining") != "9999" || h.Get("X-Limit-App-Reset") == "" {
		t.Errorf("limit headers %v", h)
	}
	m := srv.Wait(t, 1)[0]
	if m.Priority != 2 || m.Retry != 60 || m.Expire != 3600 || m.Title != "down" || m.Timestamp != 1700000000 || m.Request != r.Request {
		t.Errorf("recorded %+v", m)
	}
}

func TestAcceptsJSONAndMultipart(t *testing.T) {
	srv := pushovertest.New(t)
	body, _ := json.Marshal(map[string]any{"token": pushovertest.Token, "user": pushovertest.Group, "message": "hi", "priority": -1})
	if code, r, _ := do(t, srv, http.MethodPost, "application/json", body); code != 200 {
		t.Fatalf("JSON: %d %+v", code, r)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range valid() {
		_ = mw.WriteField(k, v[0])
	}
	_ = mw.Close()
	if code, r, _ := do(t, srv, http.MethodPost, mw.FormDataContentType(), buf.Bytes()); code != 200 {
		t.Fatalf("multipart: %d %+v", code, r)
	}
	if msgs := srv.Wait(t, 2); msgs[0].Priority != -1 || msgs[0].User != pushovertest.Group {
		t.Errorf("JSON message recorded as %+v", msgs[0])
	}
}

func TestEnforcesContract(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	for _, tc := range []struct {
		name  string
		edit  func(url.Values)
		field string
	}{
		{"no token", func(f url.Values) { f.Del("token") }, "token"},
		{"malformed token", func(f url.Values) { f.Set("token", "short") }, "token"},
		{"unknown token", func(f url.Values) { f.Set("token", strings.Repeat("a", 30)) }, "token"},
		{"no user", func(f url.Values) { f.Del("user") }, "user"},
		{"unknown user", func(f url.Values) { f.Set("user", strings.Repeat("u", 30)) }, "user"},
		{"no message", func(f url.Values) { f.Del("message") }, "message"},
		{"blank message", func(f url.Values) { f.Set("message", "  ") }, "message"},
		{"message too long", func(f url.Values) { f.Set("message", long(1025)) }, "message"},
		{"title too long", func(f url.Values) { f.Set("title", long(251)) }, "title"},
		{"url too long", func(f url.Values) { f.Set("url", "https://x/"+strings.Repeat("a", 503)) }, "url"},
		{"url_title too long", func(f url.Values) { f.Set("url_title", long(101)) }, "url_title"},
		{"priority out of range", func(f url.Values) { f.Set("priority", "3") }, "priority"},
		{"priority not a number", func(f url.Values) { f.Set("priority", "high") }, "priority"},
		{"emergency without retry", func(f url.Values) { f.Set("priority", "2"); f.Set("expire", "60") }, "retry"},
		{"emergency without expire", func(f url.Values) { f.Set("priority", "2"); f.Set("retry", "60") }, "expire"},
		{"retry too small", func(f url.Values) { f.Set("priority", "2"); f.Set("retry", "29"); f.Set("expire", "60") }, "retry"},
		{"expire too large", func(f url.Values) { f.Set("priority", "2"); f.Set("retry", "30"); f.Set("expire", "10801") }, "expire"},
		{"html and monospace", func(f url.Values) { f.Set("html", "1"); f.Set("monospace", "1") }, "monospace"},
		{"unknown sound", func(f url.Values) { f.Set("sound", "kazoo") }, "sound"},
		{"bad device", func(f url.Values) { f.Set("device", "my phone") }, "device"},
		{"bad ttl", func(f url.Values) { f.Set("ttl", "0") }, "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pushovertest.New(t)
			f := valid()
			tc.edit(f)
			code, r := post(t, srv, f)
			if code != 400 || r.Status != 0 || len(r.Errors) == 0 || r.Fields[tc.field] != "invalid" || r.Request == "" {
				t.Errorf("answer %d %+v, want 400 naming %s", code, r, tc.field)
			}
			if srv.Received() != 0 {
				t.Error("invalid message recorded")
			}
		})
	}
}

func TestMethodPathAndContentType(t *testing.T) {
	srv := pushovertest.New(t)
	body := []byte(valid().Encode())
	if code, _, _ := do(t, srv, http.MethodGet, "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", code)
	}
	if code, _, _ := do(t, srv, http.MethodPost, "text/xml", body); code != 400 {
		t.Errorf("text/xml = %d, want 400", code)
	}
	if code, _, _ := do(t, srv, http.MethodPost, "", body); code != 400 {
		t.Errorf("no content type = %d, want 400", code)
	}
}

func TestLimit(t *testing.T) {
	srv := pushovertest.New(t, pushovertest.WithLimit(1))
	if code, _ := post(t, srv, valid()); code != 200 {
		t.Fatalf("first = %d", code)
	}
	code, r, h := do(t, srv, http.MethodPost, "application/x-www-form-urlencoded", []byte(valid().Encode()))
	if code != 429 || r.Status != 0 || len(r.Errors) == 0 || h.Get("X-Limit-App-Remaining") != "0" {
		t.Errorf("over the limit: %d %+v remaining %q, want 429", code, r, h.Get("X-Limit-App-Remaining"))
	}
}

func TestFailAndHeal(t *testing.T) {
	srv := pushovertest.New(t)
	srv.Fail(500, 1)
	srv.Fail(503, 0)
	if code, _ := post(t, srv, valid()); code != 500 {
		t.Errorf("first = %d, want 500", code)
	}
	for range 2 {
		if code, _ := post(t, srv, valid()); code != 503 {
			t.Errorf("then = %d, want 503 until Heal", code)
		}
	}
	srv.Heal()
	if code, _ := post(t, srv, valid()); code != 200 {
		t.Errorf("after Heal = %d", code)
	}
	if srv.Requests() != 4 || srv.Received() != 1 {
		t.Errorf("Requests = %d, Received = %d; want 4, 1", srv.Requests(), srv.Received())
	}
}

func TestBlock(t *testing.T) {
	srv := pushovertest.New(t)
	gate := srv.Block()
	done := make(chan int, 1)
	go func() {
		resp, err := srv.Client().PostForm(srv.URL(), valid())
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-gate.Reached()
	if srv.Received() != 0 {
		t.Fatal("accepted while held")
	}
	gate.Release()
	if code := <-done; code != 200 {
		t.Errorf("after Release = %d", code)
	}
}
