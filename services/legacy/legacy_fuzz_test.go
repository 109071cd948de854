package legacy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/services/legacy"
)

// FuzzLegacy sends fuzzed requests to the combined legacy listener
// (watchTower, Traylert and System Monitor on one port, as deployed), backed
// by real ingest and api roles. The inputs are the method, path, whether the
// watchTower "password" header is sent (with the right value), the
// Content-Type and the body, so the fuzzer reaches watchTower's JSON and
// form bodies, Traylert's form and multipart alerts and System Monitor's
// JSON stats. Properties: no panic, never a 5xx (a client's input is never a
// server failure: the store is up), and every watchTower answer is one JSON
// object with a result of 200, 403 or 500.
func FuzzLegacy(f *testing.F) {
	const password = "fuzz-secret"
	be := backend(f) // one stack per fuzzing worker
	off := false
	tr, err := legacy.NewTraylert(legacy.TraylertConfig{AES: &off, Service: "traylert"}, be, nil)
	if err != nil {
		f.Fatal(err)
	}
	wt, err := legacy.NewWatchTower(legacy.WatchTowerConfig{Password: password, MaxBody: 64 << 10}, be, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	h := &legacy.Combined{WatchTower: wt, Traylert: tr, SysMon: legacy.NewSysMon(legacy.SysMonConfig{MaxBody: 64 << 10}, be, nil)}

	const form, js = "application/x-www-form-urlencoded", "application/json"
	for _, s := range []struct {
		method, path string
		pw           bool
		ct, body     string
	}{
		{"POST", "/heartbeat", true, js, `{"service":"nightly backup","nextIn":3600,"alertType":"mail","alertTarget":"ops@example.com"}`},
		{"POST", "/", true, form, `service=web&nextIn=60.5&alertType=pushover&alertTarget=u123`},
		{"POST", "/heartbeat", true, js, `{"service":"x","nextIn":"1e999","alertType":1,"alertTarget":null}`},
		{"POST", "/heartbeat", false, js, `{"service":"x","nextIn":60,"alertType":"mail","alertTarget":"a@b.c"}`},
		{"DELETE", "/heartbeat", true, js, `{"service":"nightly backup"}`},
		{"POST", "/event", true, js, `{"service":"web","message":"deployed","level":"3","alert":true}`},
		{"GET", "/events", true, "", ``},
		{"GET", "/heartbeat/nightly%20backup", true, "", ``},
		{"POST", "/alert", false, form, `alert=Disc+space+is+running+low%21`},
		{"POST", "/alert", false, "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"alert\"\r\n\r\nhi\r\n--b--\r\n"},
		{"POST", "/alert", false, form, `alert=` + strings.Repeat("%C3%A9", 200)},
		{"POST", "/", false, js, `{"action":"send_stats","system_id":"pc-1","interval":60,"epoch":1700000000,"stats":{"cpu":{"count":8,"percent_used":12.5},"disks":{"C:\\":{"total":10,"used":5,"free":5}},"processes":[{"pid":1,"name":null}]}}`},
		{"POST", "/", false, js, `{"action":"check_system_id","system_id":"pc-1"}`},
		{"POST", "/", false, js, `{"action":"check_system_id","system_id":"a/b\u0000"}`},
		{"POST", "/", false, js, `{"stats":{"cpu_usage":5,"memory_usage":7,"disk_usage":{"total":1,"used":1,"free":0}},"system_id":"old"}`},
		{"GET", "/", false, "", ``},
		{"GET", "/hello", true, "", ``},
	} {
		f.Add(s.method, s.path, s.pw, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path string, pw bool, ct string, body []byte) {
		switch method {
		case "GET", "POST", "DELETE", "HEAD", "OPTIONS":
		default:
			method = "POST"
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(context.Background(), method, "http://legacy.test", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Path = path
		req.RemoteAddr = "127.0.0.1:40000" // inside Traylert's default allow list
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if pw {
			req.Header.Set("Password", password)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%s) %q = %d %q: a client's input gave a server error", method, path, ct, body, rec.Code, rec.Body.String())
		}
		if pw && rec.Code == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			var ans struct {
				Result *int `json:"result"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				return // not watchTower's answer (System Monitor answers with no body)
			}
			if ans.Result != nil && *ans.Result != 200 && *ans.Result != 403 && *ans.Result != 500 {
				t.Fatalf("%s %s %q: watchTower result %d", method, path, body, *ans.Result)
			}
		}
	})
}
