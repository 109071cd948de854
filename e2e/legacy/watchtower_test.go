package legacy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

// pyReq is a request of the Python client (clientPython/client.py):
// requests with header "password" and, for a body, json= (so
// Content-Type: application/json and json.dumps's ", "/": " separators).
func pyReq(method, target, password, body string) string {
	h := "Host: localhost:4443\nUser-Agent: python-requests/2.19.1\nAccept-Encoding: gzip, deflate\nAccept: */*\n" +
		"Connection: keep-alive\npassword: " + password + "\n"
	if body != "" {
		h += fmt.Sprintf("Content-Length: %d\nContent-Type: application/json\n", len(body))
	}
	return method + " " + target + " HTTP/1.1\n" + h + "\n" + body
}

// javaReq is a request of the Java client (clientJava/client.java):
// HttpURLConnection with "password", lower-case "content-type" and an
// explicit Content-Length, then the headers the JDK adds.
func javaReq(method, target, password, body string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\npassword: %s\ncontent-type: application/json\nContent-Length: %d\n"+
		"User-Agent: Java/1.8.0_181\nHost: localhost:4443\nAccept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\n"+
		"Connection: keep-alive\n\n%s", method, target, password, len(body), body)
}

// jsReq is a request of the JavaScript client (clientJavascript/client.js):
// request-promise with form: {...} and json: true, so a urlencoded body,
// Accept: application/json and Node's lower-case header names.
func jsReq(method, target, password, form string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\npassword: %s\nhost: localhost:4443\naccept: application/json\n"+
		"content-type: application/x-www-form-urlencoded\ncontent-length: %d\nConnection: close\n\n%s",
		method, target, password, len(form), form)
}

// wtAnswer checks watchTower's answer convention (HTTP 200,
// application/json, one line of compact JSON) and decodes it.
func wtAnswer(t *testing.T, r response) map[string]any {
	t.Helper()
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %d %q, want 200 application/json: %s", r.code, r.header.Get("Content-Type"), r.body)
	}
	if strings.Count(r.body, "\n") != 1 || !strings.HasSuffix(r.body, "\n") || strings.Contains(r.body, `": `) {
		t.Fatalf("answer %q is not one line of compact JSON", r.body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	return m
}

func result(m map[string]any) int { n, _ := m["result"].(float64); return int(n) }

// wt is the shared vigil's watchTower (its own TLS listener).
type wt struct {
	t    *testing.T
	addr string
	tls  bool
	pw   string
}

func mainWT(t *testing.T) wt {
	p := mainStack(t)
	return wt{t: t, addr: p.listener(t, "watchtower"), tls: true, pw: wtPassword}
}

// py sends a Python client request and decodes the answer.
func (w wt) py(method, target, body string) map[string]any {
	w.t.Helper()
	return wtAnswer(w.t, raw(w.t, w.addr, w.tls, pyReq(method, target, w.pw, body)))
}

// pulse is the Python client's pulse(service, "pushover", target, nextIn).
func (w wt) pulse(service, target string, nextIn int) map[string]any {
	w.t.Helper()
	m := w.py("POST", "/heartbeat", fmt.Sprintf(`{"service": %q, "alertType": "pushover", "alertTarget": %q, "nextIn": %d}`, service, target, nextIn))
	if result(m) != 200 {
		w.t.Fatalf("pulse %s = %v", service, m)
	}
	return m
}

// hb is GET /heartbeat/<service>'s heartBeat.
func (w wt) hb(service string) map[string]any {
	w.t.Helper()
	m := w.py("GET", "/heartbeat/"+url.PathEscape(service), "")
	hb, _ := m["heartBeat"].(map[string]any)
	return hb
}

// events is GET /events?query's events.
func (w wt) events(query string) []map[string]any {
	w.t.Helper()
	m := w.py("GET", "/events?"+query, "")
	if result(m) != 200 {
		w.t.Fatalf("GET /events?%s = %v", query, m)
	}
	var out []map[string]any
	for _, e := range m["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestCase10WatchTowerPassword(t *testing.T) {
	w := mainWT(t)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/heartbeats", ""},
		{"GET", "/hello", ""},
		{"GET", "/events", ""},
		{"GET", "/pings", ""},
		{"POST", "/heartbeat", `{"service": "svc", "alertType": "pushover", "alertTarget": "uKey", "nextIn": 60}`},
		{"POST", "/event", `{"service": "s", "level": 0, "message": "m"}`},
		{"DELETE", "/heartbeat", `{"service": "svc"}`},
	} {
		reqs := map[string]string{
			"wrong password": pyReq(r.method, r.path, "wrong", r.body),
			"empty password": pyReq(r.method, r.path, "", r.body),
			"no header":      strings.Replace(pyReq(r.method, r.path, "", r.body), "password: \n", "", 1),
		}
		for name, req := range reqs {
			if got := raw(t, w.addr, true, req); got.code != http.StatusOK || got.body != `{"result":403}`+"\n" {
				t.Errorf("%s %s with %s = %d %q, want 200 {\"result\":403}", r.method, r.path, name, got.code, got.body)
			}
		}
	}
	// The header name is case-insensitive, its value exact.
	if m := wtAnswer(t, raw(t, w.addr, true, strings.Replace(pyReq("GET", "/hello", wtPassword, ""), "password:", "PassWord:", 1))); result(m) != 200 {
		t.Errorf("GET /hello with header PassWord = %v", m)
	}
}

// checkPulse checks a pulse answer for service and nextIn.
func checkPulse(t *testing.T, m map[string]any, service string, nextIn float64) {
	t.Helper()
	hb, _ := m["heartBeat"].(map[string]any)
	last, _ := hb["last"].(float64)
	expected, _ := hb["expected"].(float64)
	if result(m) != 200 || m["action"] != "pulse" || hb["service"] != service || hb["nextIn"] != nextIn ||
		expected-last != nextIn || hb["alerted"] != false || hb["cancelled"] != false || time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("pulse = %v, want action pulse and heartBeat{service %s, nextIn %v, expected-last %v, not alerted or cancelled}", m, service, nextIn, nextIn)
	}
}

func TestCase11PulseJSON(t *testing.T) {
	w := mainWT(t)
	body := `{"service": "svc", "alertType": "pushover", "alertTarget": "uKey", "nextIn": 60}`
	for _, path := range []string{"/heartbeat", "/"} {
		m := w.py("POST", path, body)
		checkPulse(t, m, "svc", 60)
		if hb := m["heartBeat"].(map[string]any); hb["alertType"] != "pushover" || hb["alertTarget"] != "uKey" || len(hb) != 8 {
			t.Errorf("POST %s heartBeat = %v, want the 8 fields with alertType and alertTarget as sent", path, hb)
		}
	}
	// The pulse is a vigil pulse.
	var s vigil.ServiceStatus
	eventually(t, wait, func() error { return getJSON(t, mainStack(t).proc, "/v1/services/svc", &s) })
	if s.NextIn.D() != time.Minute || s.Origin != "watchtower" {
		t.Errorf("vigil service svc = %+v, want next_in 60 s from watchtower", s)
	}
}

func TestCase12PulseVariants(t *testing.T) {
	w := mainWT(t)
	checkPulse(t, w.py("POST", "/heartbeat", `{"service": "svc12", "alertType": "pushover", "alertTarget": "uKey", "nextIn": "60"}`), "svc12", 60)
	for _, c := range []struct{ body, hint string }{
		{`{"service": "svc12", "alertType": "pushover", "alertTarget": "uKey", "nextIn": "abc"}`, ""},
		{`service=svc12`, ""},
		{`not json at all`, ""},
		{`{"alertType": "pushover", "alertTarget": "uKey", "nextIn": 60}`, "no service provided"},
		{`{"service": "svc12", "alertType": "pushover", "alertTarget": "uKey"}`, "no nextIn provided"},
		{`{"service": "svc12", "alertType": "pushover", "nextIn": 60}`, "no alert target provided"},
		{`{"service": "svc12", "alertTarget": "uKey", "nextIn": 60}`, "no alert type provided"},
	} {
		m := w.py("POST", "/heartbeat", c.body)
		hint, _ := m["hint"].(string)
		if result(m) != 500 || hint == "" || (c.hint != "" && hint != c.hint) || len(m) != 2 {
			t.Errorf("pulse %s = %v, want {hint: %q, result: 500}", c.body, m, c.hint)
		}
	}
	if r := raw(t, w.addr, true, pyReq("POST", "/heartbeat", wtPassword, `{"alertType": "pushover", "alertTarget": "uKey", "nextIn": 60}`)); r.body != `{"hint":"no service provided","result":500}`+"\n" {
		t.Errorf("no service = %q", r.body)
	}
}

func TestCase13HeartbeatLists(t *testing.T) {
	w := mainWT(t)
	w.pulse("svc13", "uKey", 60)
	m := w.py("GET", "/heartbeats", "")
	var names []string
	for _, h := range m["heartBeats"].([]any) {
		names = append(names, h.(map[string]any)["service"].(string))
	}
	if result(m) != 200 || !slices.Contains(names, "svc13") {
		t.Errorf("GET /heartbeats lists %q, want svc13", names)
	}
	for _, p := range []string{"/heartbeat/svc13", "/get/svc13"} {
		if m := w.py("GET", p, ""); result(m) != 200 || m["heartBeat"].(map[string]any)["service"] != "svc13" {
			t.Errorf("GET %s = %v", p, m)
		}
	}
	if r := raw(t, w.addr, true, pyReq("GET", "/heartbeat/nope", wtPassword, "")); r.body != `{"hint":"service not found","result":500}`+"\n" {
		t.Errorf("GET /heartbeat/nope = %q", r.body)
	}
	// humanDates=1: last and expected as Paris-time strings
	m = w.py("GET", "/heartbeats?humanDates=1", "")
	for _, h := range m["heartBeats"].([]any) {
		if hb := h.(map[string]any); hb["service"] == "svc13" {
			checkParis(t, hb["last"])
		}
	}
}

// checkParis checks a humanDates value: "YYYY-MM-DD HH:mm:ss" in
// Europe/Paris, about now.
func checkParis(t *testing.T, v any) {
	t.Helper()
	s, _ := v.(string)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.ParseInLocation("2006-01-02 15:04:05", s, paris)
	if err != nil || time.Since(at) > time.Hour || time.Until(at) > time.Minute {
		t.Errorf("human date %v is not about now in Europe/Paris: %v", v, err)
	}
}

func TestCase14Cancel(t *testing.T) {
	w := mainWT(t)
	w.pulse("svc14", "uKey", 60)
	m := w.py("DELETE", "/heartbeat", `{"service": "svc14"}`)
	if hb, _ := m["heartBeat"].(map[string]any); result(m) != 200 || m["action"] != "cancel" || hb["cancelled"] != true || hb["service"] != "svc14" {
		t.Errorf("cancel = %v", m)
	}
	listed := false
	for _, h := range w.py("GET", "/heartbeats", "")["heartBeats"].([]any) {
		if hb := h.(map[string]any); hb["service"] == "svc14" {
			listed = hb["cancelled"] == true
		}
	}
	if !listed {
		t.Errorf("svc14 is not listed as cancelled")
	}
	if r := raw(t, w.addr, true, pyReq("DELETE", "/", wtPassword, `{"service": "nope"}`)); r.body != `{"action":"cancel","heartBeat":"nope","result":200}`+"\n" {
		t.Errorf("DELETE / nope = %q", r.body)
	}
}

var downSince = regexp.MustCompile(`^Service (\S+) has not pulsed - The service (\S+) is not pulsing since \d{8} \d\d:\d\d:\d\d$`)

// outage pulses service with nextIn 2 s and waits until watchTower says it
// is alerted and its one Pushover message arrived.
func outage(t *testing.T, w wt, service string) {
	t.Helper()
	po := mainStack(t).pushover
	w.pulse(service, userKey, 2)
	eventually(t, wait, func() error {
		if hb := w.hb(service); hb["alerted"] != true {
			return fmt.Errorf("heartBeat %v not alerted", hb)
		}
		return nil
	})
	po.waitFor(t, service+"'s down message", func() bool { return len(po.to(userKey, "Service "+service+" has not pulsed")) > 0 })
}

// name returns base the first time and base-2, base-3… when the test runs
// again in the same process (-count), so outages of the shared vigil stay
// apart.
func name(base string) string {
	namesMu.Lock()
	defer namesMu.Unlock()
	names[base]++
	if names[base] == 1 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, names[base])
}

var (
	namesMu sync.Mutex
	names   = map[string]int{}
)

func TestCase15MissedDeadline(t *testing.T) {
	t.Parallel()
	w := mainWT(t)
	po := mainStack(t).pushover
	svc := name("svc15")
	outage(t, w, svc)
	msgs := po.to(userKey, "Service "+svc+" has not pulsed")
	if len(msgs) != 1 || !regexp.MustCompile(`^The service `+svc+` is not pulsing since \d{8} \d\d:\d\d:\d\d$`).MatchString(msgs[0].Message) {
		t.Errorf("Pushover messages = %+v, want one with watchTower's text", msgs)
	}
	var evs []map[string]any
	eventually(t, wait, func() error {
		if evs = w.events("service=" + q("^"+svc+"$")); len(evs) == 0 {
			return fmt.Errorf("no event yet")
		}
		return nil
	})
	if len(evs) != 1 || evs[0]["level"] != 0.0 || !downSince.MatchString(evs[0]["message"].(string)) {
		t.Errorf("events of %s = %v, want one level-0 %q", svc, evs, downSince)
	}
	// No second alert for the outage: a later outage (the marker's) shows
	// the watchdog judged past the service's deadline again since.
	outage(t, w, name("marker15"))
	if msgs := po.to(userKey, "Service "+svc+" has not pulsed"); len(msgs) != 1 {
		t.Errorf("%s alerted %d times", svc, len(msgs))
	}
	if evs := w.events("service=" + q("^"+svc+"$")); len(evs) != 1 {
		t.Errorf("events of %s = %v, want one", svc, evs)
	}
}

func TestCase16PulsingAgain(t *testing.T) {
	t.Parallel()
	w := mainWT(t)
	po := mainStack(t).pushover
	svc := name("svc16")
	outage(t, w, svc)
	w.pulse(svc, userKey, 3600)
	title := "Service " + svc + " is pulsing again"
	po.waitFor(t, svc+"'s recovered message", func() bool { return len(po.to(userKey, title)) > 0 })
	if msgs := po.to(userKey, title); len(msgs) != 1 || msgs[0].Message != "The service "+svc+" is pulsing again" {
		t.Errorf("recovered messages = %+v", msgs)
	}
	eventually(t, wait, func() error {
		evs := w.events("service=" + q("^"+svc+"$") + "&message=again")
		if len(evs) != 1 || evs[0]["message"] != title+" - The service "+svc+" is pulsing again" {
			return fmt.Errorf("events = %v", evs)
		}
		return nil
	})
	if hb := w.hb(svc); hb["alerted"] != false {
		t.Errorf("heartBeat after the recovery = %v, want alerted false", hb)
	}
	// A cancelled heartbeat that passes its deadline raises nothing; the
	// marker's later outage shows the watchdog judged past it.
	quiet := name("quiet16")
	w.pulse(quiet, userKey, 1)
	if m := w.py("DELETE", "/heartbeat", fmt.Sprintf(`{"service": %q}`, quiet)); result(m) != 200 {
		t.Fatal(m)
	}
	outage(t, w, name("marker16"))
	if msgs := po.to(userKey, "Service "+quiet+" has not pulsed"); len(msgs) != 0 {
		t.Errorf("the cancelled heartbeat alerted: %+v", msgs)
	}
	if hb := w.hb(quiet); hb["alerted"] != false || hb["cancelled"] != true {
		t.Errorf("%s = %v, want cancelled and not alerted", quiet, hb)
	}
}

func TestCase17AddEvent(t *testing.T) {
	w := mainWT(t)
	hello := "service=" + q("^test4$") + "&message=" + q("^hello$")
	before := len(w.events(hello))
	for _, path := range []string{"/event", "/add-event"} {
		r := raw(t, w.addr, true, pyReq("POST", path, wtPassword, `{"service": "test4", "level": 4, "message": "hello"}`))
		if wtAnswer(t, r); r.body != `{"result":200}`+"\n" {
			t.Errorf("POST %s = %q", path, r.body)
		}
	}
	// The Java client: level as a string.
	r := raw(t, w.addr, true, javaReq("POST", "/event", wtPassword, `{"service":"testJava","message":"ok message","level":"3"}`))
	if wtAnswer(t, r); r.body != `{"result":200}`+"\n" {
		t.Fatalf("Java add = %q", r.body)
	}
	eventually(t, wait, func() error {
		evs := w.events("service=" + q("^testJava$") + "&message=" + q("^ok message$"))
		if len(evs) == 0 || evs[0]["level"] != 3.0 {
			return fmt.Errorf("testJava events = %v, want level 3 (a number)", evs)
		}
		return nil
	})
	eventually(t, wait, func() error {
		if evs := w.events(hello); len(evs) != before+2 {
			return fmt.Errorf("test4 hello events = %v, want %d more (/event and /add-event)", evs, 2)
		}
		return nil
	})
}

func TestCase18AddEventHints(t *testing.T) {
	w := mainWT(t)
	for body, want := range map[string]string{
		`{"service": "s", "level": 0}`:      `{"hint":"no message provided","result":500}`,
		`{"level": 0, "message": "m"}`:      `{"hint":"no service provided","result":500}`,
		`{"level": 0, "message": ""}`:       `{"hint":"no service provided","result":500}`,
		`{"service": "s", "message": null}`: `{"hint":"no message provided","result":500}`,
	} {
		if r := raw(t, w.addr, true, pyReq("POST", "/event", wtPassword, body)); r.body != want+"\n" {
			t.Errorf("POST /event %s = %q, want %s", body, r.body, want)
		}
	}
}

// seedEvents adds test4 (level 4, "hello"), mytest (level 1, "other") and
// testJava (level 3) once.
func seedEvents(t *testing.T, w wt) {
	t.Helper()
	for _, b := range []string{
		`{"service": "test4", "level": 4, "message": "hello"}`,
		`{"service": "mytest", "level": 1, "message": "other"}`,
		`{"service": "testJava", "level": "3", "message": "ok message"}`,
	} {
		if m := w.py("POST", "/event", b); result(m) != 200 {
			t.Fatal(m)
		}
	}
	eventually(t, wait, func() error {
		if n := len(w.events("service=" + q("^mytest$"))); n == 0 {
			return fmt.Errorf("mytest not listed yet")
		}
		return nil
	})
}

func TestCase19ListEvents(t *testing.T) {
	w := mainWT(t)
	seedEvents(t, w)
	evs := w.events("")
	if len(evs) < 3 {
		t.Fatalf("events = %v", evs)
	}
	prev := int64(1 << 62)
	for _, e := range evs {
		date, ok := e["date"].(float64)
		_, lok := e["level"].(float64)
		_, mok := e["message"].(string)
		_, sok := e["service"].(string)
		if !ok || !lok || !mok || !sok || e["alert"] != false || len(e) != 5 || date != float64(int64(date)) {
			t.Errorf("event %v, want date and level integers, message, service, alert false", e)
		}
		if int64(date) > prev {
			t.Errorf("events are not newest first: %v after %d", e, prev)
		}
		prev = int64(date)
		if time.Since(time.Unix(int64(date), 0)) > 24*time.Hour {
			t.Errorf("event %v older than the default 24 h window", e)
		}
	}
}

func TestCase20EventFilters(t *testing.T) {
	w := mainWT(t)
	seedEvents(t, w)
	services := func(query string) map[string]bool {
		out := map[string]bool{}
		for _, e := range w.events(query) {
			out[e["service"].(string)] = true
		}
		return out
	}
	for _, c := range []struct {
		query    string
		has, not []string
	}{
		{"level=3", []string{"test4", "testJava"}, []string{"mytest"}},
		{"level=abc", []string{"test4", "testJava", "mytest"}, nil},
		{"service=TEST", []string{"test4", "mytest", "testJava"}, nil},
		{"service=" + q("^test"), []string{"test4", "testJava"}, []string{"mytest"}},
		{"message=hel", []string{"test4"}, []string{"mytest"}},
		{"service=", []string{"test4", "mytest"}, nil},
	} {
		got := services(c.query)
		for _, s := range c.has {
			if !got[s] {
				t.Errorf("?%s lists %v, want %s", c.query, got, s)
			}
		}
		for _, s := range c.not {
			if got[s] {
				t.Errorf("?%s lists %s", c.query, s)
			}
		}
	}
	for _, e := range w.events("level=3") {
		if e["level"].(float64) < 3 {
			t.Errorf("?level=3 lists %v", e)
		}
	}
	// from and to are inclusive epoch seconds.
	newest := w.events("service=" + q("^mytest$"))[0]
	d := int64(newest["date"].(float64))
	if !services(fmt.Sprintf("from=%d&to=%d", d, d))["mytest"] {
		t.Errorf("?from=%d&to=%d misses mytest at %d", d, d, d)
	}
	if evs := w.events(fmt.Sprintf("from=%d&to=%d", d+3600, d+7200)); len(evs) != 0 {
		t.Errorf("a window in the future lists %v", evs)
	}
	if m := w.py("GET", "/events?service="+q("("), ""); result(m) != 500 || m["hint"] == nil {
		t.Errorf("?service=( = %v, want result 500 with a hint", m)
	}
}

func TestCase21HumanDates(t *testing.T) {
	w := mainWT(t)
	seedEvents(t, w)
	for _, e := range w.events("humanDates=1&service=" + q("^mytest$")) {
		checkParis(t, e["date"])
	}
}

func TestCase22EventAlert(t *testing.T) {
	w := mainWT(t)
	po := mainStack(t).pushover
	before := len(po.to(defaultKey, "s"))
	if m := w.py("POST", "/event", `{"service": "s", "level": 0, "message": "m", "alert": true}`); result(m) != 200 {
		t.Fatal(m)
	}
	po.waitFor(t, "the event's alert to the default target", func() bool { return len(po.to(defaultKey, "s")) > before })
	if msgs := po.to(defaultKey, "s")[before:]; len(msgs) != 1 || !strings.HasPrefix(msgs[0].Message, "m") {
		t.Errorf("messages to alert.defaultTarget = %+v, want title s and message m", msgs)
	}
}

func TestCase23HelloPings(t *testing.T) {
	w := mainWT(t)
	m := w.py("GET", "/hello", "")
	world, _ := m["world"].(float64)
	presets, _ := m["eventsPresets"].([]any)
	if result(m) != 200 || m["version"] != "7" || len(presets) != 1 || time.Since(time.Unix(int64(world), 0)).Abs() > time.Minute {
		t.Errorf("GET /hello = %v, want version 7, one preset and world = now", m)
	}
	// The probe is real: it checks the test's HTTP server every second and
	// each success is a pulse.
	eventually(t, wait, func() error {
		m := w.py("GET", "/pings", "")
		ps, _ := m["pings"].([]any)
		if result(m) != 200 || len(ps) != 1 {
			return fmt.Errorf("GET /pings = %v", m)
		}
		p := ps[0].(map[string]any)
		if p["service"] != "site-probe" || p["url"] != shared.probe.URL || p["expectedCode"] != 200.0 || p["method"] != "get" {
			return fmt.Errorf("ping %v", p)
		}
		if ok, _ := p["lastPingSuccess"].(float64); ok == 0 {
			return fmt.Errorf("no success yet: %v", p)
		}
		return nil
	})
	var s vigil.ServiceStatus
	eventually(t, wait, func() error { return getJSON(t, mainStack(t).proc, "/v1/services/site-probe", &s) })
	if s.NextIn.D() != 2*time.Second {
		t.Errorf("probe service = %+v, want next_in 2 s (2 × frequency)", s)
	}
}

func TestCase24RootGUIListEvents(t *testing.T) {
	w := mainWT(t)
	p := mainStack(t)
	gui := p.api + "/gui/"
	for _, path := range []string{"/", "/gui"} {
		r := raw(t, w.addr, true, "GET "+path+" HTTP/1.1\nHost: localhost:4443\nConnection: close\n\n")
		if r.code != http.StatusFound || r.header.Get("Location") != gui {
			t.Errorf("GET %s = %d to %q, want 302 to vigil's pages %s", path, r.code, r.header.Get("Location"), gui)
		}
	}
	if m := w.py("GET", "/", ""); result(m) != 200 || m["heartBeats"] == nil {
		t.Errorf("GET / with a password = %v, want the heartbeat list", m)
	}
	seedEvents(t, w)
	a, b := w.py("GET", "/list-events?service="+q("^mytest$"), ""), w.py("GET", "/events?service="+q("^mytest$"), "")
	if ja, jb := fmt.Sprint(a), fmt.Sprint(b); ja != jb || len(b["events"].([]any)) == 0 {
		t.Errorf("/list-events = %s, /events = %s", ja, jb)
	}
	// On the combined listener (the second vigil), GET / without a password
	// is Traylert's; with one, watchTower's list.
	pp, _ := plainStack(t)
	m := wtAnswer(t, raw(t, pp.listener(t, "combined"), false, pyReq("GET", "/", "test", "")))
	if result(m) != 200 || m["heartBeats"] == nil {
		t.Errorf("combined GET / with a password = %v", m)
	}
	t.Run("page", func(t *testing.T) {
		r := do(t, "GET", gui, nil, "")
		if r.code == http.StatusNotFound {
			t.Skipf("vigil serves no web pages at %s in this build (404)", gui)
		}
		for r.code == http.StatusFound || r.code == http.StatusSeeOther {
			loc, err := url.Parse(r.header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			r = do(t, "GET", must(url.Parse(gui)).ResolveReference(loc).String(), nil, "")
		}
		if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s = %d %q, want 200 HTML", gui, r.code, r.header.Get("Content-Type"))
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCase25CORS(t *testing.T) {
	w := mainWT(t)
	r := raw(t, w.addr, true, "OPTIONS /heartbeats HTTP/1.1\nHost: localhost:4443\nOrigin: http://gui.example:8000\n"+
		"Access-Control-Request-Method: GET\nAccess-Control-Request-Headers: password\nConnection: close\n\n")
	if r.code/100 != 2 || r.header.Get("Access-Control-Allow-Origin") == "" ||
		!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "password") {
		t.Errorf("preflight = %d %v", r.code, r.header)
	}
	// The actual request from the browser carries the CORS answer too.
	req := strings.Replace(pyReq("GET", "/heartbeats", wtPassword, ""), "Accept: */*\n", "Accept: */*\nOrigin: http://gui.example:8000\n", 1)
	if r := raw(t, w.addr, true, req); r.header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("GET with Origin: no Access-Control-Allow-Origin in %v", r.header)
	}
}

func TestCase26JSClientForm(t *testing.T) {
	// clientJavascript/test.js: password "test", on the combined listener.
	pp, _ := plainStack(t)
	w := wt{t: t, addr: pp.listener(t, "combined"), pw: "test"}
	m := wtAnswer(t, raw(t, w.addr, false, jsReq("POST", "/heartbeat", "test", "service=testJS&alertType=pushover&alertTarget=pushoverID&nextIn=60")))
	checkPulse(t, m, "testJS", 60)
	if hb := w.hb("testJS"); hb["service"] != "testJS" || hb["alertTarget"] != "pushoverID" {
		t.Errorf("testJS not recorded: %v", hb)
	}
	m = wtAnswer(t, raw(t, w.addr, false, jsReq("DELETE", "/heartbeat", "test", "service=testJS")))
	if hb, _ := m["heartBeat"].(map[string]any); result(m) != 200 || hb["cancelled"] != true {
		t.Errorf("form cancel = %v", m)
	}
	// listHeartbeats(): GET with the header, body returned as a string.
	if m := wtAnswer(t, raw(t, w.addr, false, "GET /heartbeats HTTP/1.1\npassword: test\nhost: localhost:4443\nConnection: close\n\n")); result(m) != 200 {
		t.Errorf("listHeartbeats = %v", m)
	}
}
