package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/httpx"
	"github.com/vigil-monitor/vigil/services/api"
)

// hostEnv is the API role on a real embedded JetStream; its clock is now.
type hostEnv struct {
	assets *bus.Assets
	srv    *httptest.Server
	now    time.Time
}

func newHostEnv(t *testing.T) *hostEnv {
	t.Helper()
	s := bustest.New(t)
	a := s.Provision(t)
	e := &hostEnv{assets: a}
	r, err := api.New(api.DefaultConfig(), api.Deps{
		Conn: s.Conn(t), Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry(),
		Now: func() time.Time { return e.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	r.Routes(rt)
	e.srv = httptest.NewServer(rt)
	t.Cleanup(e.srv.Close)
	return e
}

// publish stores s as the agent does over NATS and returns the stream's
// arrival time of the message.
func (e *hostEnv) publish(t *testing.T, s vigil.HostStats) time.Time {
	t.Helper()
	ctx := context.Background()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.assets.JS.Publish(ctx, vigil.HostStatsSubject(s.Host), b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.assets.HostStats.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	return m.Time
}

func (e *hostEnv) get(t *testing.T, path string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s = %d %s: %v", path, resp.StatusCode, b, err)
	}
	return resp.StatusCode
}

func hostStats(host string, at time.Time, cpu float64) vigil.HostStats {
	return vigil.HostStats{
		Host: host, At: at, Interval: vigil.Seconds(10 * time.Second), Hostname: host + "-name", OS: "linux",
		Uptime: 100,
		CPU:    vigil.CPUStats{Count: 2, PercentUsed: cpu},
		Memory: vigil.MemoryStats{Total: 100, Used: 30, PercentUsed: 30},
		Disks: []vigil.DiskStats{
			{MountPoint: "/", Total: 100, Used: 70, Free: 30, PercentUsed: 70},
			{MountPoint: "/data", Total: 100, Used: uint64(cpu), Free: 100 - uint64(cpu), PercentUsed: cpu},
		},
		Network: []vigil.NetworkStats{{Name: "eth0", BytesSent: uint64(cpu) * 10}},
	}
}

func TestHostsListAndGet(t *testing.T) {
	e := newHostEnv(t)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i, h := range []string{"web2", "db.example.com", "web1"} {
		e.publish(t, hostStats(h, at, 10))
		e.publish(t, hostStats(h, at.Add(10*time.Second), float64(20+i)))
	}
	// GET /v1/hosts/{id} reads the stream: the latest at once.
	var got vigil.HostStats
	if code := e.get(t, "/v1/hosts/"+url.PathEscape("db.example.com"), &got); code != 200 || got.CPU.PercentUsed != 21 || !got.At.Equal(at.Add(10*time.Second)) {
		t.Fatalf("GET host = %d %+v, want the latest snapshot (cpu 21)", code, got)
	}
	var e404 httpx.ErrorBody
	if code := e.get(t, "/v1/hosts/nope", &e404); code != 404 {
		t.Errorf("GET unknown host = %d %+v, want 404", code, e404)
	}
	// The list follows vigil_hosts, which the stream sources a moment later.
	var p httpx.Page[vigil.HostSummary]
	bustest.Eventually(t, func() error {
		p = httpx.Page[vigil.HostSummary]{}
		if code := e.get(t, "/v1/hosts?limit=2", &p); code != 200 {
			t.Fatalf("GET /v1/hosts = %d", code)
		}
		if len(p.Items) != 2 || p.Items[0].CPUPercent != 21 || p.Items[1].CPUPercent != 22 {
			return fmt.Errorf("first page %+v, want db.example.com and web1 at their latest", p.Items)
		}
		return nil
	})
	want := vigil.HostSummary{
		Host: "db.example.com", Hostname: "db.example.com-name", OS: "linux", LastSeen: at.Add(10 * time.Second),
		Interval: vigil.Seconds(10 * time.Second), CPUPercent: 21, MemoryPercent: 30, DiskPercent: 70, DiskMount: "/", Uptime: 100,
	}
	if diff := cmp.Diff(want, p.Items[0]); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if p.NextCursor == "" {
		t.Fatal("first page has no next_cursor")
	}
	var p2 httpx.Page[vigil.HostSummary]
	if code := e.get(t, "/v1/hosts?limit=2&cursor="+p.NextCursor, &p2); code != 200 || len(p2.Items) != 1 || p2.Items[0].Host != "web2" || p2.NextCursor != "" {
		t.Errorf("second page = %d %+v, want web2 and no cursor", code, p2)
	}
	for path, field := range map[string]string{
		"/v1/hosts?limit=0":      "limit",
		"/v1/hosts?limit=x":      "limit",
		"/v1/hosts?cursor=AAAA!": "cursor",
		"/v1/hosts/" + long:      "id",
	} {
		var eb httpx.ErrorBody
		if code := e.get(t, path, &eb); code != 400 || eb.Field != field {
			t.Errorf("GET %s = %d %+v, want 400 on %s", path, code, eb, field)
		}
	}
}

var long = strings.Repeat("h", vigil.MaxNameLen+1)

func TestHostHistory(t *testing.T) {
	e := newHostEnv(t)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var arrived []time.Time
	for i := range 5 {
		arrived = append(arrived, e.publish(t, hostStats("web1", at.Add(time.Duration(i)*10*time.Second), float64(10*(i+1)))))
		e.publish(t, hostStats("web2", at, 99)) // another host in between
	}
	e.now = arrived[4].Add(time.Second)
	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }
	end := rfc(arrived[4].Add(time.Nanosecond))
	rng := "from=" + rfc(arrived[0]) + "&to=" + end
	values := func(h api.HostHistory) []float64 {
		v := []float64{}
		for _, p := range h.Points {
			v = append(v, p.Value)
		}
		return v
	}
	tests := []struct {
		name  string
		query string
		want  []float64
	}{
		{"default range: one bucket of 24h/500", "metric=cpu_percent", []float64{10}},
		{"fine buckets", "metric=cpu_percent&points=5000&" + rng, []float64{10, 20, 30, 40, 50}},
		{"one bucket is one sample", "metric=cpu_percent&points=1&" + rng, []float64{10}},
		{"from after the second", "metric=cpu_percent&points=5000&from=" + rfc(arrived[1].Add(time.Nanosecond)) + "&to=" + end, []float64{30, 40, 50}},
		{"to is exclusive", "metric=cpu_percent&points=5000&from=" + rfc(arrived[0]) + "&to=" + rfc(arrived[2]), []float64{10, 20}},
		{"label parameter", "metric=disk_percent&mount=/data&points=5000&" + rng, []float64{10, 20, 30, 40, 50}},
		{"label in the selector", "metric=" + url.QueryEscape("disk_free{mount=/}") + "&points=5000&" + rng, []float64{30, 30, 30, 30, 30}},
		{"counter", "metric=net_bytes_sent&interface=eth0&points=5000&" + rng, []float64{100, 200, 300, 400, 500}},
		{"no such disk", "metric=disk_percent&mount=/nope&points=5000&" + rng, []float64{}},
		{"unix seconds", "metric=cpu_percent&points=1&from=" + strconvF(arrived[0].Add(-time.Second)) + "&to=" + strconvF(arrived[4].Add(time.Second)), []float64{10}},
		{"empty range", "metric=cpu_percent&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h api.HostHistory
			if code := e.get(t, "/v1/hosts/web1/history?"+tt.query, &h); code != 200 {
				t.Fatalf("GET history?%s = %d", tt.query, code)
			}
			if diff := cmp.Diff(tt.want, values(h)); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
	var h api.HostHistory
	e.get(t, "/v1/hosts/web1/history?metric=cpu_percent&points=5000&"+rng, &h)
	if len(h.Points) != 5 || !h.Points[2].At.Equal(at.Add(20*time.Second)) || h.Metric != "cpu_percent" {
		t.Errorf("history = %+v, want 5 points at the collection times", h)
	}
	e.get(t, "/v1/hosts/web1/history?metric=cpu_percent", &h)
	if h.Step != vigil.Seconds(24*time.Hour/500) || !h.To.Equal(e.now) {
		t.Errorf("default history = %+v, want step 24h/500 up to now", h)
	}
	for query, field := range map[string]string{
		"":                                    "metric",
		"metric=cpu":                          "metric",
		"metric=cpu_percent&points=0":         "points",
		"metric=cpu_percent&points=5001":      "points",
		"metric=cpu_percent&from=yesterday":   "from",
		"metric=cpu_percent&to=-5":            "to",
		"metric=cpu_percent&from=200&to=100":  "from",
		"metric=cpu_percent%7Bmount%3D%2F%7D": "metric",
	} {
		var eb httpx.ErrorBody
		if code := e.get(t, "/v1/hosts/web1/history?"+query, &eb); code != 400 || eb.Field != field {
			t.Errorf("GET history?%s = %d %+v, want 400 on %s", query, code, eb, field)
		}
	}
	var eb httpx.ErrorBody
	if code := e.get(t, "/v1/hosts/nope/history?metric=cpu_percent", &eb); code != 404 {
		t.Errorf("history of an unknown host = %d %+v, want 404", code, eb)
	}
}

func strconvF(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
