package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/auth"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
	"github.com/vigil-monitor/vigil/services/api"
	"github.com/vigil-monitor/vigil/services/api/web"
	"github.com/vigil-monitor/vigil/services/ingest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/watchdog"
)

// hook is a webhook channel whose receiver is gone: every delivery fails
// for good, so alerts get failed attempts and dead letters.
type hook struct{}

func (hook) Type() string { return "webhook" }

func (hook) Send(context.Context, string, channel.Message) error {
	return channel.Permanent(errors.New("webhook answered 410 Gone"))
}

// fullStack runs every role of vigil all (ingest, api, watchdog, notifier)
// on an embedded JetStream behind a token guard, with the web pages, as
// cmd/vigil mounts them; it returns the base URL.
func fullStack(t *testing.T) string {
	t.Helper()
	s := bustest.New(t)
	a := s.Provision(t)
	deps := bus.Deps{Conn: s.Conn(t), Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry()}
	in, err := ingest.New(ingest.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := api.New(api.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	wd, err := watchdog.New(watchdog.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	nc := notifier.DefaultConfig()
	nc.Channels = []channel.Channel{hook{}}
	nc.Default.Receivers = []vigil.Owner{{Type: "webhook", Target: "https://hooks.example.com/gone"}}
	nc.Retry = notifier.Retry{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, For: 50 * time.Millisecond}
	nt, err := notifier.New(nc, deps)
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.NewGuard([]auth.Token{
		{Name: "viewer", SHA256: auth.Hash(readSecret), Scopes: []auth.Scope{auth.ScopeRead}},
		{Name: "operator", SHA256: auth.Hash(writeSecret), Scopes: []auth.Scope{auth.ScopeWrite}},
	}, bustest.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New(web.Config{Guard: g, Presets: []web.Preset{{Name: "backups", Service: "backup"}, {Name: "refused", Message: "refused"}}})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	rt.Use(g.Handler)
	for _, r := range []interface{ Routes(chi.Router) }{in, rd, nt, pages} {
		r.Routes(rt)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	for _, run := range []func(context.Context) error{rd.Run, wd.Run, nt.Run} {
		stacktest.Run(t, run)
	}
	// The pages are tested once the api's views have caught up.
	stacktest.Ready(t, rt, http.Header{"Authorization": {"Bearer " + writeSecret}})
	return srv.URL
}

// apiCall sends one API request with the write token and decodes a JSON
// answer into out (when not nil).
func apiCall(t *testing.T, method, u, body string, out any) error {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s %s = %d %s", method, u, resp.StatusCode, e.Error)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func mustAPI(t *testing.T, method, u, body string) {
	t.Helper()
	if err := apiCall(t, method, u, body, nil); err != nil {
		t.Fatal(err)
	}
}

// count returns the number of items of the list at u.
func count(t *testing.T, u string) (int, error) {
	var page struct{ Items []json.RawMessage }
	err := apiCall(t, "GET", u, "", &page)
	return len(page.Items), err
}

// seed sends what the pages show: services up, down, to cancel and to
// silence, events of each level, an hour of one host's stats and a manual
// alert; it returns once the API lists them and the down alerts have dead
// letters.
func seed(t *testing.T, base string) {
	t.Helper()
	mustAPI(t, "POST", base+"/v1/pulses", `[
		{"service":"backup-nightly","next_in":86400,"host":"web-1","owner":{"type":"webhook","target":"https://hooks.example.com/ops"},"message":"3.2 GB in 41 s"},
		{"service":"db-backup","next_in":3600,"host":"db-1"},
		{"service":"report-weekly","next_in":604800},
		{"service":"sync-job","next_in":900,"host":"web-1"},
		{"service":"cron-mailer","next_in":0.2,"grace":0}
	]`)
	mustAPI(t, "POST", base+"/v1/events", `[
		{"service":"backup-nightly","level":"info","message":"backup started"},
		{"service":"backup-nightly","level":"warning","message":"disk almost full"},
		{"service":"db-backup","level":"error","message":"connection refused by db-1"},
		{"service":"cron-mailer","level":"debug","message":"queue empty"}
	]`)
	// Host stats: six snapshots collected 5 minutes apart. GET
	// /v1/hosts/{id}/history samples snapshots by arrival time (one per
	// bucket, 1 s wide for the host page's hour), so they are sent a
	// second apart: this spaces the data, it synchronises nothing.
	now := time.Now().UTC()
	tick := time.NewTicker(1100 * time.Millisecond)
	defer tick.Stop()
	for i := 5; i >= 0; i-- {
		if i < 5 {
			<-tick.C
		}
		at := now.Add(-time.Duration(i) * 5 * time.Minute)
		mustAPI(t, "POST", base+"/v1/hosts/web-1/stats", fmt.Sprintf(`{"at":%q,"interval":300,"hostname":"web-1.example.com","os":"linux",
			"platform":"debian","platform_version":"13","uptime":864000,
			"cpu":{"count":4,"percent_used":%d},"load":{"load1":0.%d,"load5":0.5,"load15":0.4},
			"memory":{"total":8589934592,"used":4294967296,"available":4294967296,"free":1073741824,"percent_used":%d},
			"disks":[{"device":"/dev/sda1","file_system":"ext4","mount_point":"/","total":100,"used":%d,"free":%d,"percent_used":%d}],
			"network":[{"name":"eth0","bytes_sent":%d,"bytes_recv":%d}],"process_count":120}`,
			at.Format(time.RFC3339), 41+3*(5-i), 5-i, 40+i, 60+i, 40-i, 60+i, 1000000*(6-i), 3000000*(6-i)))
	}
	mustAPI(t, "POST", base+"/v1/alerts", `{"title":"Disk replaced on db-1","message":"sdb swapped, RAID rebuilding","service":"db-backup","level":"warning"}`)
	for _, c := range []struct {
		path string
		n    int
	}{
		{"/v1/services?limit=1000", 5},
		{"/v1/events?limit=1000", 4},
		{"/v1/hosts", 1},
		{"/v1/alerts?kind=down,manual", 2},
		{"/v1/deadletters", 2},
	} {
		bustest.Eventually(t, func() error {
			n, err := count(t, base+c.path)
			if err == nil && n < c.n {
				err = fmt.Errorf("GET %s lists %d items, want %d", c.path, n, c.n)
			}
			return err
		})
	}
}

// shots saves full-page PNG screenshots into VIGIL_SCREENSHOTS (default a
// new temporary directory, kept for a person to look at).
type shots struct {
	t   *testing.T
	dir string
}

func newShots(t *testing.T) *shots {
	dir := os.Getenv("VIGIL_SCREENSHOTS")
	if dir == "" {
		var err error
		// Not t.TempDir: the screenshots outlive the test for a person to see.
		if dir, err = os.MkdirTemp("", "vigil-screenshots-"); err != nil { //nolint:usetesting // kept on purpose
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return &shots{t: t, dir: dir}
}

func (s *shots) take(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(s.dir, name+".png"), buf, 0o644)
	})
}

// poll waits, without sleeping, until the JavaScript expression is truthy.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
}

// evaluate returns the value of the JavaScript expression.
func evaluate[T any](ctx context.Context, t *testing.T, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// set sets the value of the element of CSS selector sel and fires an input
// event, as typing does (chromedp.SetValue refuses an empty value).
func set(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event('input')); })(document.querySelector(%q))`, value, sel))
}

// dispatch fires a change event on the element of id, as a person's choice
// in a select does.
func dispatch(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById('` + id + `').dispatchEvent(new Event('change'))`)
}

// TestBrowser drives the pages in headless Chromium against a real vigil:
// login, the services board (search, filter, cancel, silence, a live
// status change), the events explorer (filters, presets, live tail with
// pause), hosts and a host's charts, alerts with their failed deliveries,
// dead letters and a retry, and a read-only login without actions. Set
// VIGIL_BROWSER_E2E=1 to run it (it needs chromium on PATH).
func TestBrowser(t *testing.T) {
	if os.Getenv("VIGIL_BROWSER_E2E") != "1" {
		t.Skip("set VIGIL_BROWSER_E2E=1 to run the browser test (needs chromium)")
	}
	base := fullStack(t)
	seed(t, base)
	shot := newShots(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.NoSandbox, chromedp.WindowSize(1400, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelCtx()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			flash, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('flash').textContent`))
			_ = chromedp.Do(ctx, shot.take("failed-"+strings.ReplaceAll(name, " ", "-")))
			t.Fatalf("%s: %v (the page says %q)", name, err, flash)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// The login form, reached by asking for a page.
	step("login form",
		chromedp.Navigate(base+"/gui/services"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		shot.take("01-login"),
		chromedp.SendKeys(chromedp.CSS("#token"), "vgl_wrong"),
		chromedp.Submit(chromedp.CSS("#login-form")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if got := text("#login-error"); !strings.Contains(got, "unknown token") {
		t.Errorf("login error = %q", got)
	}
	step("login",
		chromedp.SendKeys(chromedp.CSS("#token"), writeSecret),
		chromedp.Submit(chromedp.CSS("#login-form")),
		chromedp.WaitVisible(chromedp.CSS(`tr.svc[data-name="backup-nightly"]`)),
		poll(`document.querySelectorAll('tr.svc').length === 5`),
		poll(`document.querySelector('tr.svc[data-name="cron-mailer"]').dataset.status === 'down'`),
		poll(`document.querySelectorAll('.uptime[data-uptime]').length === 5`),
		poll(`document.getElementById('live').classList.contains('on')`))
	if got := text(`tr.svc[data-name="backup-nightly"]`); !strings.Contains(got, "up") || !strings.Contains(got, "webhook: https://hooks.example.com/ops") ||
		!strings.Contains(got, "web-1") || !strings.Contains(got, "in 23 h") {
		t.Errorf("backup-nightly's row = %q, want up, its owner, host web-1 and a countdown", got)
	}
	if got := text("#user"); got != "operator" {
		t.Errorf("user = %q", got)
	}
	uptime := evaluate[string](ctx, t, `document.querySelector('tr.svc[data-name="backup-nightly"] .uptime').dataset.uptime`)
	if uptime != "100.00" {
		t.Errorf("backup-nightly's 24 h uptime = %s%%, want 100.00", uptime)
	}
	step("services", shot.take("02-services"))

	// Search and the status filter.
	step("search",
		chromedp.SendKeys(chromedp.CSS("#search"), "db-"),
		poll(`document.querySelectorAll('tr.svc').length === 1 && document.querySelector('tr.svc').dataset.name === 'db-backup'`),
		set("#search", ""),
		chromedp.SendKeys(chromedp.CSS("#search"), "web-1"),
		poll(`document.querySelectorAll('tr.svc').length === 2`),
		set("#search", ""),
		chromedp.SendKeys(chromedp.CSS("#search"), " "),
		poll(`document.querySelectorAll('tr.svc').length === 5`),
		chromedp.Click(chromedp.CSS(`#status-filter button[data-status="down"]`)),
		poll(`document.querySelectorAll('tr.svc').length === 1 && document.querySelector('tr.svc').dataset.name === 'cron-mailer'`),
		shot.take("03-services-down"),
		chromedp.Click(chromedp.CSS(`#status-filter button[data-status=""]`)),
		poll(`document.querySelectorAll('tr.svc').length === 5`))

	// Cancel (two clicks: the first asks for confirmation) and silence.
	step("cancel",
		chromedp.Click(chromedp.CSS(`tr.svc[data-name="report-weekly"] button.cancel`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.svc[data-name="report-weekly"] button.cancel.confirm`)),
		chromedp.Click(chromedp.CSS(`tr.svc[data-name="report-weekly"] button.cancel`)),
		poll(`document.querySelector('tr.svc[data-name="report-weekly"]').dataset.status === 'cancelled'`))
	var svc struct{ Status string }
	bustest.Eventually(t, func() error {
		if err := apiCall(t, "GET", base+"/v1/services/report-weekly", "", &svc); err != nil {
			return err
		}
		if svc.Status != "cancelled" {
			return fmt.Errorf("report-weekly is %s, want cancelled", svc.Status)
		}
		return nil
	})
	step("silence",
		set(`tr.svc[data-name="sync-job"] select.silence-for`, "14400"),
		chromedp.Click(chromedp.CSS(`tr.svc[data-name="sync-job"] button.silence`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.svc[data-name="sync-job"] .silenced-note`)))
	var sil struct {
		Items []struct {
			Matchers []struct{ Name, Value string }
			EndsAt   time.Time `json:"ends_at"`
			By       string    `json:"created_by"`
		}
	}
	if err := apiCall(t, "GET", base+"/v1/silences?state=active", "", &sil); err != nil {
		t.Fatal(err)
	}
	if len(sil.Items) != 1 || sil.Items[0].Matchers[0].Value != "sync-job" || sil.Items[0].By != "operator" ||
		time.Until(sil.Items[0].EndsAt) < 3*time.Hour || time.Until(sil.Items[0].EndsAt) > 4*time.Hour {
		t.Errorf("silences after the click = %+v, want one of sync-job for 4 h by operator", sil.Items)
	}

	// A status change arrives live: a new service goes down while the page
	// is open, well before the board's 20 s refresh.
	mustAPI(t, "POST", base+"/v1/pulses", `{"service":"flip-live","next_in":1,"grace":0}`)
	step("live status",
		poll(`(document.querySelector('tr.svc[data-name="flip-live"]') || {dataset: {}}).dataset.status === 'down'`),
		shot.take("04-services-actions"))

	// Events: newest first, filters, presets, live tail with pause.
	step("events",
		chromedp.Navigate(base+"/gui/events"),
		poll(`document.querySelectorAll('#events tr.event').length === 4`))
	if got := text("#events tbody tr:first-child .message"); got != "queue empty" {
		t.Errorf("first event = %q, want the newest (queue empty)", got)
	}
	if got := text("#events tbody tr:first-child .time"); !strings.HasPrefix(got, time.Now().Format("2006-01-02 ")) {
		t.Errorf("first event's time = %q, want today's date and time", got)
	}
	step("events shot", shot.take("05-events"))
	step("service filter",
		chromedp.SendKeys(chromedp.CSS("#f-service"), "backup-n"),
		chromedp.Click(chromedp.CSS("#apply")),
		poll(`document.querySelectorAll('#events tr.event').length === 2 && location.search.includes('service=backup-n')`),
		set("#f-level", "warning"),
		dispatch("f-level"),
		poll(`document.querySelectorAll('#events tr.event').length === 1`))
	if got := text("#events tbody tr:first-child .message"); got != "disk almost full" {
		t.Errorf("warning+ backup event = %q", got)
	}
	step("preset",
		set("#f-level", ""),
		set("#preset", "1"),
		dispatch("preset"),
		poll(`document.querySelectorAll('#events tr.event').length === 1 && document.querySelector('#events tr.event .message').textContent.startsWith('connection refused')`),
		set("#f-message", ""),
		set("#f-service", ""),
		chromedp.Click(chromedp.CSS(`#period button[data-period="604800"]`)),
		poll(`document.querySelectorAll('#events tr.event').length === 4`),
		poll(`document.getElementById('live').classList.contains('on')`))
	mustAPI(t, "POST", base+"/v1/events", `{"service":"tail-test","level":"error","message":"live one"}`)
	step("live tail",
		poll(`document.querySelector('#events tbody tr:first-child .message').textContent === 'live one'`),
		chromedp.Click(chromedp.CSS("#pause")),
		chromedp.WaitVisible(chromedp.CSS(`#pause[aria-pressed="true"]`)))
	mustAPI(t, "POST", base+"/v1/events", `{"service":"tail-test","level":"info","message":"while paused"}`)
	step("paused",
		poll(`document.getElementById('counts').textContent.includes('paused, 1 new')`))
	if got := text("#events tbody tr:first-child .message"); got != "live one" {
		t.Errorf("while paused the first event became %q", got)
	}
	step("resume",
		shot.take("06-events-paused"),
		chromedp.Click(chromedp.CSS("#pause")),
		poll(`document.querySelector('#events tbody tr:first-child .message').textContent === 'while paused'`))

	// Hosts and a host's charts.
	step("hosts",
		chromedp.Navigate(base+"/gui/hosts"),
		chromedp.WaitVisible(chromedp.CSS(`tr.host[data-host="web-1"]`)),
		shot.take("07-hosts"))
	if got := text(`tr.host[data-host="web-1"]`); !strings.Contains(got, "56.0%") || !strings.Contains(got, "40.0%") || !strings.Contains(got, "60.0%") {
		t.Errorf("web-1's row = %q, want cpu 56.0%%, memory 40.0%%, disk 60.0%%", got)
	}
	href := evaluate[string](ctx, t, `document.querySelector('tr.host[data-host="web-1"] a').href`)
	if href != base+"/gui/hosts/web-1" {
		t.Errorf("web-1's link = %q", href)
	}
	step("host",
		chromedp.Navigate(href),
		poll(`document.querySelector('#chart-network polyline') !== null`),
		poll(`document.querySelectorAll('.chart polyline').length === 5`))
	points := evaluate[map[string]int](ctx, t, `Object.fromEntries(Array.from(document.querySelectorAll('.chart polyline')).map(p => [p.closest('.chart').id + ':' + p.dataset.series, Number(p.dataset.points)]))`)
	for _, k := range []string{"chart-cpu:cpu", "chart-memory:memory", "chart-disk:/", "chart-network:received", "chart-network:sent"} {
		if want := 6 - strings.Count(k, "network"); points[k] != want {
			t.Errorf("chart %s has %d points, want %d (%v)", k, points[k], want, points)
		}
	}
	if got := text("#host-info"); !strings.Contains(got, "web-1.example.com") || !strings.Contains(got, "4 CPUs") {
		t.Errorf("host info = %q", got)
	}
	step("host shot", shot.take("08-host"))

	// Alerts with their failed deliveries; dead letters and a retry.
	step("alerts",
		chromedp.Navigate(base+"/gui/alerts"),
		poll(`Array.from(document.querySelectorAll('li.alert.down')).some(a => a.dataset.service === 'cron-mailer' && a.querySelector('li.delivery[data-status="dead"]'))`),
		poll(`document.querySelector('li.alert.manual') !== null`),
		shot.take("09-alerts"))
	if got := text(`li.alert.manual`); !strings.Contains(got, "Disk replaced on db-1") || !strings.Contains(got, "webhook answered 410 Gone") {
		t.Errorf("manual alert = %q, want its title and the delivery error", got)
	}
	step("dead letters",
		chromedp.Navigate(base+"/gui/deadletters"),
		poll(`document.querySelectorAll('tr.deadletter').length >= 2`),
		shot.take("10-deadletters"),
		chromedp.Click(chromedp.CSS(`tr.deadletter button.retry`)),
		poll(`document.querySelector('tr.deadletter button.retry').textContent === 'Re-queued'`),
		poll(`document.getElementById('flash').textContent.includes('retry 1')`))

	// A read-only token sees the same pages without actions.
	step("read only",
		chromedp.Click(chromedp.CSS(`form[action="/gui/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), readSecret),
		chromedp.Submit(chromedp.CSS("#login-form")),
		chromedp.WaitVisible(chromedp.CSS(`tr.svc[data-name="backup-nightly"]`)))
	buttons := evaluate[int](ctx, t, `document.querySelectorAll('button.cancel, button.silence').length`)
	if buttons != 0 || !strings.Contains(text("#user"), "read only") {
		t.Errorf("read-only board shows %d action buttons (user %q)", buttons, text("#user"))
	}
	step("read only shot", shot.take("11-services-read-only"))
}
