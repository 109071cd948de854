package legacy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/stacktest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

func newFleet(t *testing.T, st *stack, cfg legacy.FleetConfig) string {
	t.Helper()
	cfg.UnitEvery, cfg.MachineEvery = 20*time.Millisecond, 100*time.Millisecond
	f, err := legacy.NewFleet(cfg, st.be, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Run(t, f.Run)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, u string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://localhost:8000"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// next reads frames until one of type typ arrives.
func next(t *testing.T, c *websocket.Conn, typ string) legacy.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		mt, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if mt != websocket.MessageText {
			t.Fatalf("frame type %v", mt)
		}
		var f legacy.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), `{"type":"`+f.Type+`","fields":[`) {
			t.Fatalf("key order: %s", b)
		}
		if f.Type == typ {
			return f
		}
	}
}

// Cases 28, 29, 31: the feed drawn from vigil.
func TestFleetFromVigil(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()
	for _, s := range []string{"web", "db"} {
		if _, err := st.be.Intake.StorePulse(ctx, vigil.Pulse{Service: s, NextIn: vigil.Seconds(time.Hour), Host: "node-1"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	hs := &vigil.HostStats{
		Host: "node-1", Hostname: "n1", OS: "linux", At: time.Now(),
		Disks: []vigil.DiskStats{}, Network: []vigil.NetworkStats{{Name: "lo", IP: "127.0.0.1"}, {Name: "eth0", IP: "10.0.0.1"}},
	}
	if _, err := st.be.Intake.StoreHostStats(ctx, hs); err != nil {
		t.Fatal(err)
	}
	u := newFleet(t, st, legacy.FleetConfig{})
	c1, c2 := dial(t, u+"/any/path"), dial(t, u)
	// a client message is ignored and the connection stays open
	if err := c1.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		bustest.Eventually(t, func() error {
			f := next(t, c, "unit")
			if fmt.Sprint(f.Fields) != "[unit load active sub machine]" || fmt.Sprint(f.Items) != "[[db loaded active running node-1] [web loaded active running node-1]]" {
				return fmt.Errorf("unit frame %+v", f)
			}
			return nil
		})
		bustest.Eventually(t, func() error {
			f := next(t, c, "machine")
			if fmt.Sprint(f.Fields) != "[machine ip metadata]" || fmt.Sprint(f.Items) != "[[node-1 10.0.0.1 hostname=n1,os=linux]]" {
				return fmt.Errorf("machine frame %+v", f)
			}
			return nil
		})
		// frames keep coming though nothing changed, names unique
		for range 3 {
			f := next(t, c, "unit")
			seen := map[string]bool{}
			for _, it := range f.Items {
				if seen[it[0]] {
					t.Fatalf("duplicate unit %q", it[0])
				}
				seen[it[0]] = true
			}
		}
	}
}

// Case 30: a stub fleetctl.
func TestFleetctl(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	stub := filepath.Join(dir, "fleetctl")
	script := "#!/bin/sh\necho \"$@\" >> " + argsFile + "\ncase \"$*\" in\n*list-units*) printf 'a.service\\tloaded\\tactive\\trunning\\tm1/10.0.0.1\\nb.service\\tloaded\\tfailed\\tfailed\\tm2/10.0.0.2\\n' ;;\n*) printf 'm1\\t10.0.0.1\\trole=web\\n' ;;\nesac\n"
	if err := os.WriteFile(stub, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	st := newStack(t)
	for _, c := range []struct {
		cfg    legacy.FleetConfig
		prefix string
	}{
		{legacy.FleetConfig{Fleetctl: stub}, "list-units -l -no-legend -fields unit,load,active,sub,machine"},
		{legacy.FleetConfig{Fleetctl: stub, Endpoint: "10.0.0.5"}, "--endpoint http://10.0.0.5:4001 list-units"},
		{legacy.FleetConfig{Fleetctl: stub, Tunnel: "bastion"}, "--tunnel bastion:22 list-units"},
	} {
		_ = os.Remove(argsFile)
		conn := dial(t, newFleet(t, st, c.cfg))
		f := next(t, conn, "unit")
		if fmt.Sprint(f.Items) != "[[a.service loaded active running m1/10.0.0.1] [b.service loaded failed failed m2/10.0.0.2]]" {
			t.Errorf("items = %v", f.Items)
		}
		if m := next(t, conn, "machine"); fmt.Sprint(m.Items) != "[[m1 10.0.0.1 role=web]]" {
			t.Errorf("machines = %v", m.Items)
		}
		b, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for line := range strings.SplitSeq(string(b), "\n") {
			found = found || strings.HasPrefix(line, c.prefix)
		}
		if !found {
			t.Errorf("stub args %q, want a line starting %q", b, c.prefix)
		}
	}
}
