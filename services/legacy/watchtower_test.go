package legacy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

const wtPassword = "change me"

// pushoverKey is a well-formed Pushover user key (30 letters and digits).
const pushoverKey = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"

var pw = [][2]string{{"password", wtPassword}}

func newWatchTower(t *testing.T, cfg legacy.WatchTowerConfig) (*stack, string) {
	t.Helper()
	st := newStack(t)
	if cfg.Password == "" {
		cfg.Password = wtPassword
	}
	w, err := legacy.NewWatchTower(cfg, st.be, bustest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Run(t, w.Run)
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return st, srv.URL
}

// wt checks the watchTower answer convention (HTTP 200, application/json,
// one line) and decodes the body.
func wt(t *testing.T, method, url string, hdr [][2]string, body string) map[string]any {
	t.Helper()
	code, h, b := do(t, method, url, hdr, body)
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s = %d %q, want 200 application/json", method, url, code, h.Get("Content-Type"))
	}
	if strings.Count(b, "\n") != 1 || !strings.HasSuffix(b, "\n") {
		t.Fatalf("%s %s: body is not one line: %q", method, url, b)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatalf("%s %s: %v in %q", method, url, err, b)
	}
	return m
}

func result(m map[string]any) int { n, _ := m["result"].(float64); return int(n) }

var jsonCT = [][2]string{{"password", wtPassword}, {"Content-Type", "application/json"}}

func pulseBody(s string, nextIn any) string {
	b, _ := json.Marshal(map[string]any{"service": s, "alertType": "pushover", "alertTarget": pushoverKey, "nextIn": nextIn})
	return string(b)
}

// Case 10.
func TestWatchTowerPassword(t *testing.T) {
	_, u := newWatchTower(t, legacy.WatchTowerConfig{})
	for _, r := range []struct{ m, p, body string }{
		{"GET", "/heartbeats", ""},
		{"GET", "/hello", ""},
		{"GET", "/events", ""},
		{"GET", "/pings", ""},
		{"POST", "/heartbeat", pulseBody("svc", 60)},
		{"POST", "/event", `{"service":"s","message":"m"}`},
		{"DELETE", "/heartbeat", `{"service":"svc"}`},
	} {
		for _, h := range [][][2]string{nil, {{"password", "wrong"}}, {{"PASSWORD", ""}}} {
			if m := wt(t, r.m, u+r.p, h, r.body); result(m) != 403 || len(m) != 1 {
				t.Errorf("%s %s with %v = %v, want {result:403}", r.m, r.p, h, m)
			}
		}
	}
	// the empty password never matches a missing header
	_, u2 := newWatchTower(t, legacy.WatchTowerConfig{Password: ""})
	if m := wt(t, "GET", u2+"/hello", nil, ""); result(m) != 403 {
		t.Errorf("no header = %v", m)
	}
}

// Cases 11, 12, 13, 14, 26.
func TestWatchTowerHeartbeats(t *testing.T) {
	_, u := newWatchTower(t, legacy.WatchTowerConfig{})
	for _, path := range []string{"/heartbeat", "/"} {
		m := wt(t, "POST", u+path, jsonCT, `{"service":"svc","alertType":"pushover","alertTarget":"uKey","nextIn":60}`)
		hb, _ := m["heartBeat"].(map[string]any)
		if result(m) != 200 || m["action"] != "pulse" || hb["service"] != "svc" || hb["nextIn"] != 60.0 ||
			hb["expected"].(float64)-hb["last"].(float64) != 60 || hb["alerted"] != false || hb["cancelled"] != false ||
			hb["alertTarget"] != "uKey" || hb["alertType"] != "pushover" {
			t.Fatalf("POST %s = %v", path, m)
		}
	}
	// Case 12.
	if m := wt(t, "POST", u+"/heartbeat", jsonCT, pulseBody("svc2", "60")); result(m) != 200 {
		t.Errorf(`nextIn "60" = %v`, m)
	}
	for _, c := range []struct{ body, hint string }{
		{pulseBody("svc", "abc"), ""},
		{"not json", ""},
		{`{"alertType":"pushover","alertTarget":"k","nextIn":60}`, "no service provided"},
		{`{"service":"s","alertType":"pushover","alertTarget":"k"}`, "no nextIn provided"},
		{`{"service":"s","alertType":"pushover","nextIn":60}`, "no alert target provided"},
		{`{"service":"s","alertTarget":"k","nextIn":60}`, "no alert type provided"},
	} {
		m := wt(t, "POST", u+"/heartbeat", jsonCT, c.body)
		if result(m) != 500 || m["hint"] == nil || (c.hint != "" && m["hint"] != c.hint) {
			t.Errorf("%s = %v, want 500 %q", c.body, m, c.hint)
		}
	}
	// Case 13.
	m := wt(t, "GET", u+"/heartbeats", pw, "")
	if !listed(m, "svc") {
		t.Errorf("heartbeats = %v", m)
	}
	for _, p := range []string{"/heartbeat/svc", "/get/svc"} {
		if m := wt(t, "GET", u+p, pw, ""); m["heartBeat"].(map[string]any)["service"] != "svc" {
			t.Errorf("%s = %v", p, m)
		}
	}
	if m := wt(t, "GET", u+"/heartbeat/nope", pw, ""); result(m) != 500 || m["hint"] != "service not found" {
		t.Errorf("nope = %v", m)
	}
	// Case 14.
	m = wt(t, "DELETE", u+"/heartbeat", jsonCT, `{"service":"svc"}`)
	if m["action"] != "cancel" || m["heartBeat"].(map[string]any)["cancelled"] != true {
		t.Errorf("cancel = %v", m)
	}
	m = wt(t, "GET", u+"/heartbeats", pw, "")
	if !listed(m, "svc") {
		t.Errorf("cancelled svc not listed: %v", m)
	}
	if _, _, b := do(t, "DELETE", u+"/", jsonCT, `{"service":"nope"}`); b != `{"action":"cancel","heartBeat":"nope","result":200}`+"\n" {
		t.Errorf("cancel nope = %q", b)
	}
	// Case 26: the JS client's form bodies.
	form := [][2]string{{"password", wtPassword}, {"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}}
	m = wt(t, "POST", u+"/heartbeat", form, "service=testJS&alertType=pushover&alertTarget=pushoverID&nextIn=60")
	if result(m) != 200 || m["heartBeat"].(map[string]any)["service"] != "testJS" {
		t.Errorf("form pulse = %v", m)
	}
	if m := wt(t, "DELETE", u+"/heartbeat", form, "service=testJS"); result(m) != 200 || m["heartBeat"].(map[string]any)["cancelled"] != true {
		t.Errorf("form cancel = %v", m)
	}
}

// Cases 15, 16.
func TestWatchTowerDeadline(t *testing.T) {
	st, u := newWatchTower(t, legacy.WatchTowerConfig{})
	if m := wt(t, "POST", u+"/heartbeat", jsonCT, pulseBody("svc", 1)); result(m) != 200 {
		t.Fatal(m)
	}
	down := func() []vigil.Alert { return alerts(t, st, "svc") }
	bustest.Eventually(t, func() error {
		m := wt(t, "GET", u+"/heartbeat/svc", pw, "")
		if m["heartBeat"].(map[string]any)["alerted"] != true {
			return fmt.Errorf("not alerted yet: %v", m)
		}
		return nil
	})
	var as []vigil.Alert
	bustest.Eventually(t, func() error {
		if as = down(); len(as) == 0 {
			return fmt.Errorf("no alert yet")
		}
		return nil
	})
	if len(as) != 1 || as[0].Kind != vigil.AlertDown || as[0].Origin != legacy.OriginWatchTower ||
		as[0].Owner == nil || as[0].Owner.Target != pushoverKey {
		t.Fatalf("alerts = %+v, want one watchtower down alert to %s", as, pushoverKey)
	}
	var evs []any
	bustest.Eventually(t, func() error {
		if evs = wt(t, "GET", u+"/events?service=^svc$", pw, "")["events"].([]any); len(evs) == 0 {
			return fmt.Errorf("no event yet")
		}
		return nil
	})
	re := regexp.MustCompile(`^Service svc has not pulsed - The service svc is not pulsing since \d{8} \d\d:\d\d:\d\d$`)
	if len(evs) != 1 || !re.MatchString(evs[0].(map[string]any)["message"].(string)) || evs[0].(map[string]any)["level"] != 0.0 {
		t.Fatalf("events = %v", evs)
	}
	// Case 16: pulsing again.
	if m := wt(t, "POST", u+"/heartbeat", jsonCT, pulseBody("svc", 3600)); result(m) != 200 {
		t.Fatal(m)
	}
	bustest.Eventually(t, func() error {
		if as := down(); len(as) != 2 || as[1].Kind != vigil.AlertRecovered {
			return fmt.Errorf("alerts = %+v", as)
		}
		return nil
	})
	if down()[0].Kind != vigil.AlertDown {
		t.Errorf("the outage alerted more than once: %+v", down())
	}
	var m map[string]any
	bustest.Eventually(t, func() error {
		if m = wt(t, "GET", u+"/events?service=^svc$&message=again", pw, ""); len(m["events"].([]any)) == 0 {
			return fmt.Errorf("no event yet")
		}
		return nil
	})
	if evs := m["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["message"] != "Service svc is pulsing again - The service svc is pulsing again" {
		t.Errorf("events = %v", m)
	}
	if hb := wt(t, "GET", u+"/heartbeat/svc", pw, "")["heartBeat"].(map[string]any); hb["alerted"] != false {
		t.Errorf("hb = %v", hb)
	}
	// A cancelled heartbeat past its deadline raises nothing: cancel a
	// 1 s pulse, then a second service's outage proves the watchdog swept
	// past the first one's deadline.
	wt(t, "POST", u+"/heartbeat", jsonCT, pulseBody("quiet", 1))
	wt(t, "DELETE", u+"/heartbeat", jsonCT, `{"service":"quiet"}`)
	wt(t, "POST", u+"/heartbeat", jsonCT, pulseBody("marker", 2))
	bustest.Eventually(t, func() error {
		if len(alerts(t, st, "marker")) == 0 {
			return fmt.Errorf("marker not down yet")
		}
		return nil
	})
	if as := alerts(t, st, "quiet"); len(as) != 0 {
		t.Errorf("cancelled service alerted: %+v", as)
	}
}

// alerts lists the alerts of service, oldest first, from the API.
func alerts(t *testing.T, st *stack, service string) []vigil.Alert {
	t.Helper()
	req := httptest.NewRequestWithContext(context.Background(), "GET", "/v1/alerts?order=asc&service_exact="+service, nil)
	rec := httptest.NewRecorder()
	st.api.ServeHTTP(rec, req)
	var p struct{ Items []vigil.Alert }
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err, rec.Body.String())
	}
	return p.Items
}

// Cases 17, 18, 19, 20, 21, 22.
func TestWatchTowerEvents(t *testing.T) {
	owner := &vigil.Owner{Type: "pushover", Target: pushoverKey}
	st, u := newWatchTower(t, legacy.WatchTowerConfig{DefaultOwner: owner})
	if b := wtRaw(t, "POST", u+"/event", jsonCT, `{"service":"test4","message":"hello","level":4}`); b != `{"result":200}`+"\n" {
		t.Fatalf("event = %q", b)
	}
	if m := wt(t, "POST", u+"/add-event", jsonCT, `{"service":"mytest","message":"other","level":1}`); result(m) != 200 {
		t.Fatal(m)
	}
	// The Java client: explicit Content-Length, lower-case content-type, level as a string.
	java := [][2]string{{"password", wtPassword}, {"content-type", "application/json"}}
	if m := wt(t, "POST", u+"/event", java, `{"service":"testJava","message":"ok message","level":"3"}`); result(m) != 200 {
		t.Fatal(m)
	}
	// Case 18.
	if m := wt(t, "POST", u+"/event", jsonCT, `{"service":"s"}`); m["hint"] != "no message provided" {
		t.Error(m)
	}
	if m := wt(t, "POST", u+"/event", jsonCT, `{"message":"m"}`); m["hint"] != "no service provided" {
		t.Error(m)
	}
	var evs []any
	bustest.Eventually(t, func() error {
		evs = wt(t, "GET", u+"/events", pw, "")["events"].([]any)
		if len(evs) != 3 {
			return fmt.Errorf("events = %v", evs)
		}
		return nil
	})
	// Case 19: newest first, with the original's fields.
	first := evs[0].(map[string]any)
	if first["service"] != "testJava" || first["level"] != 3.0 || first["alert"] != false || first["message"] != "ok message" {
		t.Errorf("newest = %v", first)
	}
	if _, ok := first["date"].(float64); !ok || len(first) != 5 {
		t.Errorf("event shape = %v", first)
	}
	names := func(q string) string {
		m := wt(t, "GET", u+"/events?"+q, pw, "")
		if result(m) != 200 {
			return fmt.Sprint(m)
		}
		var s []string
		for _, e := range m["events"].([]any) {
			s = append(s, e.(map[string]any)["service"].(string))
		}
		return strings.Join(s, ",")
	}
	date := int64(first["date"].(float64))
	for q, want := range map[string]string{
		"level=3":                                "testJava,test4",
		"level=abc":                              "testJava,mytest,test4",
		"service=TEST":                           "testJava,mytest,test4",
		"service=^test":                          "testJava,test4",
		"service=^test4$":                        "test4",
		"message=hel":                            "test4",
		"service=":                               "testJava,mytest,test4",
		fmt.Sprintf("from=%d&to=%d", date, date): "testJava",
		fmt.Sprintf("from=%d&to=%d", date+1, date+5): "",
	} {
		if got := names(q); !strings.HasPrefix(got, want) || (want == "" && got != "") {
			t.Errorf("?%s = %q, want %q", q, got, want)
		}
	}
	if m := wt(t, "GET", u+"/events?service=(", pw, ""); result(m) != 500 {
		t.Errorf("bad regex = %v", m)
	}
	if m := wt(t, "GET", u+"/list-events?service=^test4$", pw, ""); len(m["events"].([]any)) != 1 {
		t.Errorf("list-events = %v", m)
	}
	// Case 21.
	m := wt(t, "GET", u+"/events?humanDates=1&service=^test4$", pw, "")
	d, _ := m["events"].([]any)[0].(map[string]any)["date"].(string)
	paris, _ := time.LoadLocation("Europe/Paris")
	if tm, err := time.ParseInLocation("2006-01-02 15:04:05", d, paris); err != nil || time.Since(tm) > time.Hour || time.Since(tm) < -time.Minute {
		t.Errorf("human date %q: %v", d, err)
	}
	// Case 22.
	if m := wt(t, "POST", u+"/event", jsonCT, `{"service":"s","message":"m","alert":true}`); result(m) != 200 {
		t.Fatal(m)
	}
	var as []vigil.Alert
	bustest.Eventually(t, func() error {
		if as = alerts(t, st, "s"); len(as) == 0 {
			return fmt.Errorf("no alert yet")
		}
		return nil
	})
	if len(as) != 1 || as[0].Title != "s" || as[0].Message != "m" || as[0].Owner == nil || *as[0].Owner != *owner {
		t.Errorf("event alert = %+v", as)
	}
}

func wtRaw(t *testing.T, method, url string, hdr [][2]string, body string) string {
	t.Helper()
	_, _, b := do(t, method, url, hdr, body)
	return b
}

// Cases 23, 24, 25 and the probes.
func TestWatchTowerHelloGUICORSProbes(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(target.Close)
	probe := legacy.Probe{Service: "site", URL: target.URL, Frequency: time.Second, AlertType: "pushover", AlertTarget: pushoverKey}
	st, u := newWatchTower(t, legacy.WatchTowerConfig{Version: "7", EventsPresets: []legacy.Preset{{Name: "all"}}, Probes: []legacy.Probe{probe}})
	m := wt(t, "GET", u+"/hello", pw, "")
	if w, _ := m["world"].(float64); result(m) != 200 || m["version"] != "7" || len(m["eventsPresets"].([]any)) != 1 || time.Since(time.Unix(int64(w), 0)) > time.Minute {
		t.Errorf("hello = %v", m)
	}
	// the probe really runs, and its success is a pulse
	bustest.Eventually(t, func() error {
		m := wt(t, "GET", u+"/pings", pw, "")
		ps := m["pings"].([]any)
		if len(ps) != 1 || ps[0].(map[string]any)["lastPingSuccess"] == 0.0 {
			return fmt.Errorf("pings = %v", m)
		}
		return nil
	})
	bustest.Eventually(t, func() error {
		ss, err := st.be.Services(context.Background())
		if err != nil || len(ss) != 1 || ss[0].Name != "site" || ss[0].NextIn.D() != 2*time.Second {
			return fmt.Errorf("services = %+v: %w", ss, err)
		}
		return nil
	})
	// Case 24.
	if code, h, _ := do(t, "GET", u+"/", nil, ""); code != http.StatusFound || h.Get("Location") != "/gui/" {
		t.Errorf("GET / = %d %v", code, h)
	}
	if code, h, _ := do(t, "GET", u+"/gui", nil, ""); code != http.StatusFound || h.Get("Location") != "/gui/" {
		t.Errorf("GET /gui = %d %v", code, h)
	}
	if m := wt(t, "GET", u+"/", pw, ""); result(m) != 200 || m["heartBeats"] == nil {
		t.Errorf("GET / with password = %v", m)
	}
	// Case 25.
	code, h, _ := do(t, "OPTIONS", u+"/heartbeats", [][2]string{{"Origin", "http://gui.example"}, {"Access-Control-Request-Method", "GET"}, {"Access-Control-Request-Headers", "password"}}, "")
	if code/100 != 2 || h.Get("Access-Control-Allow-Origin") == "" || !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "password") {
		t.Errorf("preflight = %d %v", code, h)
	}
}

func listed(m map[string]any, service string) bool {
	hbs, _ := m["heartBeats"].([]any)
	for _, h := range hbs {
		if h.(map[string]any)["service"] == service {
			return true
		}
	}
	return false
}
