package ingest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/httpx"
	"github.com/vigil-monitor/vigil/services/ingest"
)

// statsServer runs the ingest routes on a real embedded JetStream.
func statsServer(t *testing.T, cfg ingest.Config) (*httptest.Server, *bus.Assets) {
	t.Helper()
	s := bustest.New(t)
	a := s.Provision(t)
	role, err := ingest.New(cfg, ingest.Deps{Conn: s.Conn(t), Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	role.Routes(rt)
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	return srv, a
}

func postStats(t *testing.T, srv *httptest.Server, id, contentType, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/v1/hosts/"+url.PathEscape(id)+"/stats", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func statsBody(host string) string {
	s := vigil.HostStats{
		Host: host, At: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Interval: vigil.Seconds(time.Minute),
		CPU:    vigil.CPUStats{Count: 2, Frequency: 2000, PercentUsed: 50},
		Memory: vigil.MemoryStats{Total: 100, Available: 60, Used: 40, Free: 50, PercentUsed: 40},
		Disks:  []vigil.DiskStats{{Device: "/dev/sda1", FileSystem: "ext4", MountPoint: "/", Total: 10, Used: 5, Free: 5, PercentUsed: 50}},
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func TestHostStatsStored(t *testing.T) {
	srv, a := statsServer(t, ingest.DefaultConfig())
	ctx := context.Background()
	for _, id := range []string{"Linux-abc123", "db.example.com", "a/b c"} {
		code, body := postStats(t, srv, id, "application/json", statsBody(""), "Idempotency-Key", "k-"+vigil.Token(id))
		if code != http.StatusAccepted {
			t.Fatalf("POST stats of %q = %d %s, want 202", id, code, body)
		}
		var ans ingest.HostStatsAnswer
		if err := json.Unmarshal(body, &ans); err != nil || ans.Host != id || ans.Seq == 0 || ans.Duplicate {
			t.Fatalf("answer = %s (%v), want host %q, a seq, no duplicate", body, err, id)
		}
		m, err := a.HostStats.GetLastMsgForSubject(ctx, vigil.HostStatsSubject(id))
		if err != nil {
			t.Fatalf("stored message of %q: %v", id, err)
		}
		var got vigil.HostStats
		if err := json.Unmarshal(m.Data, &got); err != nil || got.Host != id || got.CPU.PercentUsed != 50 {
			t.Errorf("stored %s (%v), want host %q and cpu 50", m.Data, err, id)
		}
		if m.Sequence != ans.Seq {
			t.Errorf("stored seq %d, answered %d", m.Sequence, ans.Seq)
		}
		bustest.Eventually(t, func() error {
			_, err := a.Hosts.Get(ctx, vigil.Token(id))
			return err
		})
		// A retry with the same key is stored once.
		code, body = postStats(t, srv, id, "", statsBody(id), "Idempotency-Key", "k-"+vigil.Token(id))
		var dup ingest.HostStatsAnswer
		if err := json.Unmarshal(body, &dup); code != http.StatusAccepted || err != nil || !dup.Duplicate || dup.Seq != ans.Seq {
			t.Errorf("retry = %d %s, want 202 duplicate of seq %d", code, body, ans.Seq)
		}
	}
}

func TestHostStatsBadInput(t *testing.T) {
	cfg := ingest.DefaultConfig()
	cfg.MaxBody = 4096
	srv, a := statsServer(t, cfg)
	good := statsBody("")
	tests := []struct {
		name, id, ct, body string
		hdr                []string
		code               int
		field              string
	}{
		{"host mismatch", "web1", "application/json", statsBody("web2"), nil, 400, "host"},
		{"cpu over 100", "web1", "", strings.Replace(good, `"percent_used":50`, `"percent_used":150`, 1), nil, 400, "cpu.percent_used"},
		{"wrong type", "web1", "", strings.Replace(good, `"count":2`, `"count":"two"`, 1), nil, 400, "cpu.count"},
		{"bad time", "web1", "", strings.Replace(good, `"at":"2026-05-01T12:00:00Z"`, `"at":"yesterday"`, 1), nil, 400, "at"},
		{"no time", "web1", "", strings.Replace(good, `"at":"2026-05-01T12:00:00Z"`, `"at":"0001-01-01T00:00:00Z"`, 1), nil, 400, "at"},
		{"empty body", "web1", "", "", nil, 400, ""},
		{"not json", "web1", "", "cpu=1", nil, 400, ""},
		{"trailing data", "web1", "", good + good, nil, 400, ""},
		{"long id", strings.Repeat("h", vigil.MaxNameLen+1), "", good, nil, 400, "id"},
		{"bad key", "web1", "", good, []string{"Idempotency-Key", "a b"}, 400, "Idempotency-Key"},
		{"too large", "web1", "", good + strings.Repeat(" ", 5000), nil, 413, ""},
		{"media type", "web1", "text/plain", good, nil, 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := postStats(t, srv, tt.id, tt.ct, tt.body, tt.hdr...)
			if code != tt.code {
				t.Fatalf("POST = %d %s, want %d", code, body, tt.code)
			}
			var e httpx.ErrorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Field != tt.field {
				t.Errorf("error body %s, want field %q", body, tt.field)
			}
		})
	}
	info, err := a.HostStats.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("bad requests stored %d messages, want 0", info.State.Msgs)
	}
}

func TestHostStatsUnavailable(t *testing.T) {
	cfg := ingest.DefaultConfig()
	cfg.PublishTimeout = 200 * time.Millisecond
	s := bustest.New(t)
	a := s.Provision(t)
	role, err := ingest.New(cfg, ingest.Deps{Conn: s.Conn(t), Assets: a, Log: bustest.Logger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	rt := chi.NewRouter()
	role.Routes(rt)
	srv := httptest.NewServer(rt)
	defer srv.Close()
	s.Stop()
	code, body := postStats(t, srv, "web1", "", statsBody(""))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("POST with JetStream down = %d %s, want 503", code, body)
	}
}
