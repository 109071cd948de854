package legacy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/services/legacy"
)

// benchClients is how many legacy clients send at once in the parallel
// benchmarks (× GOMAXPROCS): many hosts each run one agent or client.
const benchClients = 8

// post sends body to url with the headers of h and checks the status.
func post(c *http.Client, method, url string, h http.Header, body string, want int) error {
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s = %d %s", method, url, resp.StatusCode, b)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && !strings.Contains(string(b), `"result":200`) {
		return fmt.Errorf("%s %s = %s", method, url, b)
	}
	return nil
}

// parallel runs one request per iteration from benchClients×GOMAXPROCS
// clients and reports requests per second; req gets a unique number.
func parallel(b *testing.B, req func(c *http.Client, n int64) error) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var seq atomic.Int64
	b.SetParallelism(benchClients)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := req(c, seq.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkWatchTowerPulse is POST /heartbeat as the Python client sends
// it, over HTTP, answered after the JetStream ack of the pulse (1000
// services, each pulsed again and again).
func BenchmarkWatchTowerPulse(b *testing.B) {
	w, err := legacy.NewWatchTower(legacy.WatchTowerConfig{Password: wtPassword}, backend(b), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(w)
	b.Cleanup(srv.Close)
	h := http.Header{"password": {wtPassword}, "Content-Type": {"application/json"}}
	parallel(b, func(c *http.Client, n int64) error {
		body := fmt.Sprintf(`{"service": "svc-%d", "alertType": "pushover", "alertTarget": %q, "nextIn": 60}`, n%1000, pushoverKey)
		return post(c, "POST", srv.URL+"/heartbeat", h, body, http.StatusOK)
	})
}

// BenchmarkWatchTowerEvent is POST /event as the Java client sends it
// (level as a string), answered after the JetStream ack of the event.
func BenchmarkWatchTowerEvent(b *testing.B) {
	w, err := legacy.NewWatchTower(legacy.WatchTowerConfig{Password: wtPassword}, backend(b), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(w)
	b.Cleanup(srv.Close)
	h := http.Header{"password": {wtPassword}, "content-type": {"application/json"}}
	parallel(b, func(c *http.Client, n int64) error {
		body := fmt.Sprintf(`{"service":"job-%d","message":"backup %d finished in 42 s","level":"3"}`, n%100, n)
		return post(c, "POST", srv.URL+"/event", h, body, http.StatusOK)
	})
}

// sendStatsBody is a v0.4.3 send_stats body of at least size bytes.
func sendStatsBody(b *testing.B, id string, size int) string {
	b.Helper()
	type proc struct {
		PID      int     `json:"pid"`
		Name     string  `json:"name"`
		Username *string `json:"username"`
	}
	user := `DESKTOP-7Q2K9LM\alice`
	var procs []proc
	var body []byte
	for len(body) < size {
		for range 50 {
			procs = append(procs, proc{PID: 4 * (len(procs) + 1), Name: fmt.Sprintf("process-%03d.exe", len(procs)), Username: &user})
		}
		var err error
		body, err = json.Marshal(map[string]any{
			"action": "send_stats", "system_id": id, "url": "http://127.0.0.1:5000", "interval": 60, "epoch": time.Now().Unix(),
			"stats": map[string]any{
				"cpu":    map[string]any{"count": 8, "percent_used": 12.5, "frequency": 2803.0},
				"memory": map[string]any{"total": 17041244160, "available": 9123123200, "used": 7918120960, "free": 9123123200, "percent_used": 46.5},
				"disks": map[string]any{`C:\`: map[string]any{
					"total": 511101108224, "used": 201101108224, "free": 310000000000, "file_system": "NTFS", "mount_point": `C:\`,
				}},
				"processes": procs,
				"network":   map[string]any{"Ethernet": map[string]any{"ip": "192.168.1.23", "netmask": "255.255.255.0", "bytes_sent": 1, "bytes_recv": 2}},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return string(body)
}

// BenchmarkSysMonSendStats50KB is the System Monitor agent's send_stats
// with a 50 KB body (about 650 processes), stored as host stats (200 after
// the JetStream ack), from 100 hosts.
func BenchmarkSysMonSendStats50KB(b *testing.B) {
	srv := httptest.NewServer(legacy.NewSysMon(legacy.SysMonConfig{}, backend(b), nil))
	b.Cleanup(srv.Close)
	bodies := make([]string, 100)
	for i := range bodies {
		bodies[i] = sendStatsBody(b, fmt.Sprintf("Windows-%032d", i), 50<<10)
	}
	b.SetBytes(int64(len(bodies[0])))
	h := http.Header{"Content-Type": {"application/json"}}
	parallel(b, func(c *http.Client, n int64) error {
		return post(c, "POST", srv.URL+"/", h, bodies[n%int64(len(bodies))], http.StatusOK)
	})
}

// BenchmarkTraylertGet is the Traylert client's poll: GET / builds the
// system info (disk, memory, the ring buffer from the alert stream) and
// wraps it in the AES-EAX envelope.
func BenchmarkTraylertGet(b *testing.B) {
	be := backend(b)
	off := 0.0
	tr, err := legacy.NewTraylert(legacy.TraylertConfig{Key: traylertKey, LowDisk: &off}, be, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(tr)
	b.Cleanup(srv.Close)
	c := srv.Client()
	for _, a := range []string{"Backup failed", "Disk full"} {
		if err := post(c, "POST", srv.URL+"/alert", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "alert="+a, http.StatusOK); err != nil {
			b.Fatal(err)
		}
	}
	parallel(b, func(c *http.Client, _ int64) error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/", nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"py/b64"`) {
			return fmt.Errorf("GET / = %d %.100s", resp.StatusCode, body)
		}
		return nil
	})
}
