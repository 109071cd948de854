package legacy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil"
)

// OriginWatchTower is the Record.Origin of pulses that came through the
// watchTower protocol; the notifier then uses watchTower's texts.
const OriginWatchTower = "watchtower"

// humanLayout is watchTower's humanDates format (Python "%Y-%m-%d %H:%M:%S").
const humanLayout = "2006-01-02 15:04:05"

// WatchTowerConfig configures the watchTower surface
// (lucasmouilleron/watchTower, compat.md §2).
type WatchTowerConfig struct {
	// Password is the shared secret every API route expects in header
	// "password" (server.password). A missing header never matches.
	Password string `yaml:"password"`
	// TimeZone is the IANA zone of humanDates and of the "since" time of
	// down texts (default Europe/Paris, as the original).
	TimeZone string `yaml:"time_zone"`
	// Version is what GET /hello reports (config.version, default "0").
	Version string `yaml:"version"`
	// EventsPresets are the GUI's filter presets (eventsPresets).
	EventsPresets []Preset `yaml:"events_presets"`
	// DefaultOwner is told about events sent with "alert": true
	// (alert.defaultType / alert.defaultTarget); nil means the notifier's
	// default route.
	DefaultOwner *vigil.Owner `yaml:"default_owner"`
	// GUI is where GET /gui and an unauthenticated GET / redirect (default
	// "/gui/", vigil's web pages).
	GUI string `yaml:"gui"`
	// Probes are the HTTP checks listed by GET /pings (config pings[]).
	Probes []Probe `yaml:"probes"`
	// MaxBody bounds request bodies, in bytes (default 1 MiB).
	MaxBody int64 `yaml:"max_body"`
}

// Preset is one GUI filter preset: a name and service/message regexes.
type Preset struct {
	Name    string `yaml:"name" json:"name"`
	Service string `yaml:"service" json:"service,omitempty"`
	Message string `yaml:"message" json:"message,omitempty"`
}

func (c *WatchTowerConfig) defaults() {
	if c.TimeZone == "" {
		c.TimeZone = "Europe/Paris"
	}
	if c.Version == "" {
		c.Version = "0"
	}
	if c.GUI == "" {
		c.GUI = "/gui/"
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 1 << 20
	}
}

// WatchTower serves the watchTower API. Every API route answers HTTP 200
// with a one-line JSON body whose "result" is 200, 403 (bad password) or
// 500 with a "hint", as the original; legacy clients depend on it.
type WatchTower struct {
	cfg    WatchTowerConfig
	be     *Backend
	loc    *time.Location
	log    *slog.Logger
	now    func() time.Time
	probes *prober
}

// NewWatchTower returns the watchTower surface; it fails on an unknown time
// zone, a bad default owner or a bad probe.
func NewWatchTower(cfg WatchTowerConfig, be *Backend, log *slog.Logger, now func() time.Time) (*WatchTower, error) {
	cfg.defaults()
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("watchtower: time zone %q: %w", cfg.TimeZone, err)
	}
	if cfg.DefaultOwner != nil {
		if err := cfg.DefaultOwner.Validate(); err != nil {
			return nil, fmt.Errorf("watchtower: default owner: %w", err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	w := &WatchTower{cfg: cfg, be: be, loc: loc, log: log.With("component", "legacy-watchtower"), now: now}
	if w.probes, err = newProber(cfg.Probes, be, w.log, now); err != nil {
		return nil, err
	}
	return w, nil
}

// wtResult is an answer body; its fields are marshalled in sorted order by
// writeResult.
type wtResult map[string]any

// hintError is an error whose text is the hint as watchTower words it.
type hintError string

func (h hintError) Error() string { return string(h) }

// ServeHTTP routes the watchTower paths; it answers false for a path that
// is not watchTower's so a combined listener can try another surface.
func (w *WatchTower) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !w.Serve(rw, r) {
		http.NotFound(rw, r)
	}
}

// Serve answers r when its path is one of watchTower's and reports whether
// it did.
func (w *WatchTower) Serve(rw http.ResponseWriter, r *http.Request) bool {
	cors(rw, r)
	p := r.URL.Path
	if r.Method == http.MethodOptions {
		rw.WriteHeader(http.StatusOK)
		return true
	}
	switch {
	case p == "/heartbeat" && r.Method == http.MethodPost:
		w.api(rw, r, w.pulse)
	case p == "/heartbeat" && r.Method == http.MethodDelete, p == "/" && r.Method == http.MethodDelete:
		w.api(rw, r, w.cancel)
	case p == "/" && r.Method == http.MethodPost:
		w.api(rw, r, w.pulse)
	case p == "/" && r.Method == http.MethodGet:
		if _, ok := r.Header["Password"]; !ok {
			http.Redirect(rw, r, w.cfg.GUI, http.StatusFound)
			return true
		}
		w.api(rw, r, w.heartbeats)
	case p == "/heartbeats" && r.Method == http.MethodGet:
		w.api(rw, r, w.heartbeats)
	case strings.HasPrefix(p, "/heartbeat/") && r.Method == http.MethodGet:
		w.api(rw, r, w.heartbeat(strings.TrimPrefix(p, "/heartbeat/")))
	case strings.HasPrefix(p, "/get/") && r.Method == http.MethodGet:
		w.api(rw, r, w.heartbeat(strings.TrimPrefix(p, "/get/")))
	case (p == "/event" || p == "/add-event") && r.Method == http.MethodPost:
		w.api(rw, r, w.addEvent)
	case (p == "/events" || p == "/list-events") && r.Method == http.MethodGet:
		w.api(rw, r, w.events)
	case p == "/hello" && r.Method == http.MethodGet:
		w.api(rw, r, w.hello)
	case p == "/pings" && r.Method == http.MethodGet:
		w.api(rw, r, w.pings)
	case p == "/gui" || p == "/gui/app" || p == "/gui/events":
		http.Redirect(rw, r, w.cfg.GUI, http.StatusFound)
	default:
		return false
	}
	return true
}

// cors answers like flask-cors with its defaults: any origin, the usual
// methods, and on a preflight the requested headers (password included).
func cors(rw http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == "" {
		return
	}
	h := rw.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
	}
}

// api checks the password, runs h and writes its answer: HTTP 200 always,
// result 403 for a bad password, 500 with the error as hint.
func (w *WatchTower) api(rw http.ResponseWriter, r *http.Request, h func(*http.Request) (wtResult, error)) {
	if !w.authorized(r) {
		writeResult(rw, wtResult{"result": 403})
		return
	}
	res, err := h(r)
	if err != nil {
		var hint hintError
		if !errors.As(err, &hint) {
			w.log.Warn("watchtower request failed", "path", r.URL.Path, "err", err)
		}
		writeResult(rw, wtResult{"result": 500, "hint": strings.ReplaceAll(err.Error(), "\n", "////")})
		return
	}
	res["result"] = 200
	writeResult(rw, res)
}

// authorized compares header "password" (any case of the name) with the
// configured password in constant time; a missing header never matches.
func (w *WatchTower) authorized(r *http.Request) bool {
	vs, ok := r.Header["Password"]
	if !ok || len(vs) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(vs[0]), []byte(w.cfg.Password)) == 1
}

// writeResult writes v as compact JSON with sorted keys and a trailing
// newline, on one line, HTTP 200.
func writeResult(rw http.ResponseWriter, v wtResult) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		b.WriteString(`{"hint":"encode answer","result":500}` + "\n")
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(b.Bytes()) // the client is gone
}

// body reads the request's fields: a JSON object whatever the Content-Type
// (as the original), or form fields for a form-urlencoded body (fixed: the
// JS client sends forms).
func (w *WatchTower) body(r *http.Request) (map[string]any, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, w.cfg.MaxBody+1))
	if err != nil {
		return nil, hintError("could not read the body: " + err.Error())
	}
	if int64(len(data)) > w.cfg.MaxBody {
		return nil, hintError(fmt.Sprintf("body over the limit of %d bytes", w.cfg.MaxBody))
	}
	if ct := strings.ToLower(r.Header.Get("Content-Type")); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		vals, err := url.ParseQuery(string(data))
		if err != nil {
			return nil, hintError("bad form body: " + err.Error())
		}
		m := make(map[string]any, len(vals))
		for k, v := range vals {
			m[k] = v[0]
		}
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, hintError("Expecting value: line 1 column 1 (char 0)")
	}
	return m, nil
}

// str returns field k as Python's str() would for a string or number, ""
// when missing or null.
func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "True"
		}
		return "False"
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// pyInt is Python's int() of a JSON value: integers, floats (truncated),
// numeric strings and booleans.
func pyInt(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, hintError(fmt.Sprintf("cannot convert float %s to integer", x))
		}
		return int64(f), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, hintError(fmt.Sprintf("invalid literal for int() with base 10: '%s'", x))
		}
		return n, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	default:
		return 0, hintError(fmt.Sprintf("int() argument must be a string, a bytes-like object or a number, not '%s'", pyType(v)))
	}
}

func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case map[string]any:
		return "dict"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// truthy is Python's bool() of a JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f != 0
	case nil:
		return false
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	}
	return false
}

// heartBeat is watchTower's HB object; fields in sorted key order. Last and
// Expected are epoch ints, or strings with humanDates=1.
type heartBeat struct {
	AlertTarget string `json:"alertTarget"`
	AlertType   string `json:"alertType"`
	Alerted     bool   `json:"alerted"`
	Cancelled   bool   `json:"cancelled"`
	Expected    any    `json:"expected"`
	Last        any    `json:"last"`
	NextIn      int64  `json:"nextIn"`
	Service     string `json:"service"`
}

// ownerTag prefixes the pulse message that keeps watchTower's alertType and
// alertTarget as sent, so a target vigil cannot deliver to (not an owner
// vigil.Owner.Validate accepts) is still echoed back.
const ownerTag = "watchtower owner: "

func (w *WatchTower) pulse(r *http.Request) (wtResult, error) {
	m, err := w.body(r)
	if err != nil {
		return nil, err
	}
	service := str(m, "service")
	if service == "" {
		return nil, hintError("no service provided")
	}
	if _, ok := m["nextIn"]; !ok {
		return nil, hintError("no nextIn provided")
	}
	nextIn, err := pyInt(m["nextIn"])
	if err != nil {
		return nil, err
	}
	target, typ := str(m, "alertTarget"), str(m, "alertType")
	if target == "" {
		return nil, hintError("no alert target provided")
	}
	if typ == "" {
		return nil, hintError("no alert type provided")
	}
	p := vigil.Pulse{Service: service, NextIn: vigil.Seconds(time.Duration(nextIn) * time.Second)}
	o := &vigil.Owner{Type: typ, Target: target}
	if err := o.Validate(); err == nil {
		p.Owner = o
	} else {
		w.log.Warn("watchtower pulse: alert target is not deliverable, the default route applies", "service", service, "alert_type", typ, "err", err)
	}
	p.Message = ownerTag + typ + " " + target
	if len(p.Message) > vigil.MaxMessageLen {
		p.Message = ""
	}
	rec, err := w.be.Intake.StorePulse(r.Context(), p, OriginWatchTower)
	if err != nil {
		return nil, err
	}
	hb := w.fromRecord(rec, false, false)
	return wtResult{"action": "pulse", "heartBeat": hb}, nil
}

func (w *WatchTower) cancel(r *http.Request) (wtResult, error) {
	m, err := w.body(r)
	if err != nil {
		return nil, err
	}
	service := str(m, "service")
	if service == "" {
		return nil, hintError("no service provided")
	}
	rec, err := w.be.Intake.StoreCancel(r.Context(), service)
	if errors.Is(err, vigil.ErrNotFound) {
		return wtResult{"action": "cancel", "heartBeat": service}, nil
	}
	if err != nil {
		return nil, err
	}
	return wtResult{"action": "cancel", "heartBeat": w.fromRecord(rec, false, false)}, nil
}

// owner returns the alertType and alertTarget as the client sent them.
func owner(o *vigil.Owner, msg string) (typ, target string) {
	if t, ok := strings.CutPrefix(msg, ownerTag); ok {
		typ, target, _ = strings.Cut(t, " ")
		return typ, target
	}
	if o != nil {
		return o.Type, o.Target
	}
	return "", ""
}

func (w *WatchTower) fromRecord(rec *vigil.Record, alerted, human bool) heartBeat {
	typ, target := owner(rec.Owner, rec.Message)
	return w.hb(rec.Service, typ, target, rec.At, rec.NextIn, alerted, rec.Op == vigil.OpCancel, human)
}

func (w *WatchTower) fromStatus(s *vigil.ServiceStatus, human bool) heartBeat {
	typ, target := owner(s.Owner, s.Message)
	return w.hb(s.Name, typ, target, s.LastPulse, s.NextIn, s.Status == vigil.StatusDown, s.Status == vigil.StatusCancelled, human)
}

func (w *WatchTower) hb(service, typ, target string, last time.Time, nextIn vigil.Seconds, alerted, cancelled, human bool) heartBeat {
	n := int64(nextIn.D() / time.Second)
	lastS := last.Unix()
	hb := heartBeat{
		AlertTarget: target, AlertType: typ, Alerted: alerted, Cancelled: cancelled, NextIn: n, Service: service,
		Last: lastS, Expected: lastS + n,
	}
	if human {
		hb.Last = time.Unix(lastS, 0).In(w.loc).Format(humanLayout)
		hb.Expected = time.Unix(lastS+n, 0).In(w.loc).Format(humanLayout)
	}
	return hb
}

func (w *WatchTower) heartbeats(r *http.Request) (wtResult, error) {
	human := r.URL.Query().Get("humanDates") == "1"
	ss, err := w.be.services(r.Context())
	if err != nil {
		return nil, err
	}
	hbs := make([]heartBeat, 0, len(ss))
	for i := range ss {
		hbs = append(hbs, w.fromStatus(&ss[i], human))
	}
	return wtResult{"heartBeats": hbs}, nil
}

func (w *WatchTower) heartbeat(escaped string) func(*http.Request) (wtResult, error) {
	return func(r *http.Request) (wtResult, error) {
		name, err := url.PathUnescape(escaped)
		if err != nil || name == "" {
			return nil, hintError("service not found")
		}
		var s vigil.ServiceStatus
		if err := w.be.get(r.Context(), "/v1/services/"+url.PathEscape(name), nil, &s); err != nil {
			if errors.Is(err, errNotFound) {
				return nil, hintError("service not found")
			}
			return nil, err
		}
		return wtResult{"heartBeat": w.fromStatus(&s, false)}, nil
	}
}

// wtEvent is watchTower's EV object, fields in sorted key order.
type wtEvent struct {
	Alert   bool   `json:"alert"`
	Date    any    `json:"date"`
	Level   int64  `json:"level"`
	Message string `json:"message"`
	Service string `json:"service"`
	at      int64
}

func (w *WatchTower) addEvent(r *http.Request) (wtResult, error) {
	m, err := w.body(r)
	if err != nil {
		return nil, err
	}
	service, message := str(m, "service"), str(m, "message")
	if service == "" {
		return nil, hintError("no service provided")
	}
	if message == "" {
		return nil, hintError("no message provided")
	}
	// The original stores the level as given and reads a non-integer back
	// as 0; the Java client sends "3".
	var level int64
	if v, ok := m["level"]; ok && v != nil {
		if n, err := pyInt(v); err == nil && n >= 0 && n <= int64(vigil.MaxEventLevel) {
			level = n
		}
	}
	if err := w.be.Intake.StoreEvent(r.Context(), vigil.Event{Service: service, Message: message, Level: vigil.Level(level)}); err != nil {
		return nil, err
	}
	if truthy(m["alert"]) {
		a := vigil.ManualAlert{Service: service, Title: service, Message: message, Level: vigil.Level(level), Owner: w.cfg.DefaultOwner}
		if len(a.Title) > vigil.MaxTitleLen {
			a.Title = a.Title[:vigil.MaxTitleLen]
		}
		if _, err := w.be.Intake.StoreAlert(r.Context(), a); err != nil {
			return nil, err
		}
	}
	return wtResult{}, nil
}

// epochParam reads an integer epoch-seconds parameter; anything else gives
// def, as the original.
func epochParam(q url.Values, k string, def int64) int64 {
	n, err := strconv.ParseInt(q.Get(k), 10, 64)
	if err != nil {
		return def
	}
	return n
}

func (w *WatchTower) events(r *http.Request) (wtResult, error) {
	q := r.URL.Query()
	now := w.now().Unix()
	from, to := epochParam(q, "from", now-86400), epochParam(q, "to", now)
	human := q.Get("humanDates") == "1"
	var serviceRE, messageRE *regexp.Regexp
	var err error
	for _, f := range []struct {
		k  string
		re **regexp.Regexp
	}{{"service", &serviceRE}, {"message", &messageRE}} {
		if s := q.Get(f.k); s != "" {
			if *f.re, err = regexp.Compile("(?i)" + s); err != nil {
				return nil, hintError(err.Error())
			}
		}
	}
	level := int64(-1)
	if n, err := strconv.ParseInt(q.Get("level"), 10, 64); err == nil {
		level = n
	}
	out := []wtEvent{}
	if from > to {
		return wtResult{"events": out}, nil
	}
	aq := url.Values{}
	aq.Set("from", strconv.FormatInt(from, 10))
	// inclusive to whole seconds: the API's bounds are instants
	aq.Set("to", strconv.FormatInt(to, 10)+".999999999")
	if serviceRE != nil {
		aq.Set("service", q.Get("service"))
	}
	eq := url.Values{}
	for k, v := range aq {
		eq[k] = v
	}
	if messageRE != nil {
		eq.Set("message", q.Get("message"))
	}
	if level > 0 {
		eq.Set("level", strconv.FormatInt(level, 10))
	}
	evs, err := list[vigil.Event](r.Context(), w.be, "/v1/events", eq)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		at := e.Received
		out = append(out, wtEvent{Service: e.Service, Message: e.Message, Level: int64(e.Level), at: at.Unix()})
	}
	// watchTower wrote an event (level 0) with each down and recovered
	// alert; vigil keeps alerts in their own stream, so they are listed
	// here for services that came through this protocol.
	if level <= 0 {
		aq.Set("kind", "down,recovered")
		alerts, err := list[vigil.Alert](r.Context(), w.be, "/v1/alerts", aq)
		if err != nil {
			return nil, err
		}
		for _, a := range alerts {
			if a.Origin != OriginWatchTower {
				continue
			}
			msg := w.alertText(&a)
			if messageRE != nil && !messageRE.MatchString(msg) {
				continue
			}
			out = append(out, wtEvent{Service: a.Service, Message: msg, at: a.At.Unix()})
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].at > out[j].at })
	}
	for i := range out {
		out[i].Date = out[i].at
		if human {
			out[i].Date = time.Unix(out[i].at, 0).In(w.loc).Format(humanLayout)
		}
	}
	return wtResult{"events": out}, nil
}

// alertText is the event message watchTower wrote with a down or recovered
// alert: "<title> - <body>" (server/heartbeat.py).
func (w *WatchTower) alertText(a *vigil.Alert) string {
	if a.Kind == vigil.AlertRecovered {
		return "Service " + a.Service + " is pulsing again - The service " + a.Service + " is pulsing again"
	}
	return "Service " + a.Service + " has not pulsed - The service " + a.Service + " is not pulsing since " +
		a.LastPulse.In(w.loc).Format("20060102 15:04:05")
}

func (w *WatchTower) hello(*http.Request) (wtResult, error) {
	presets := w.cfg.EventsPresets
	if presets == nil {
		presets = []Preset{}
	}
	return wtResult{"eventsPresets": presets, "version": w.cfg.Version, "world": w.now().Unix()}, nil
}

func (w *WatchTower) pings(r *http.Request) (wtResult, error) {
	return wtResult{"pings": w.probes.list(r.URL.Query().Get("humanDates") == "1", w.loc)}, nil
}

// Run runs the probes until ctx ends.
func (w *WatchTower) Run(ctx context.Context) error {
	return w.probes.run(ctx)
}
