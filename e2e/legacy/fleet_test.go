package legacy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// installStub copies testdata/fleetctl into a new folder and returns its
// path and the file it logs its arguments to.
func installStub(name string) (stub, argsLog string, err error) {
	src, err := os.ReadFile(filepath.Join("testdata", "fleetctl"))
	if err != nil {
		return "", "", err
	}
	dir, err := os.MkdirTemp(tmpRoot, "fleetctl-"+name)
	if err != nil {
		return "", "", err
	}
	stub = filepath.Join(dir, "fleetctl")
	if err := os.WriteFile(stub, src, 0o755); err != nil { //nolint:gosec // an executable script
		return "", "", err
	}
	return stub, filepath.Join(dir, "args.log"), nil
}

// fleetFrame is one fleet message, with its bytes.
type fleetFrame struct {
	Type   string     `json:"type"`
	Fields []string   `json:"fields"`
	Items  [][]string `json:"items"`
	raw    string
}

// dashboard is a fleet-monitor-dashboard connection and every frame it
// read.
type dashboard struct {
	c    *websocket.Conn
	seen map[string]bool
}

// dialFleet opens ws://addr+path as the dashboard does (from another
// origin) and checks the 101.
func dialFleet(t *testing.T, addr, path string) *dashboard {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+path, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://localhost:8000"}}})
	if err != nil {
		t.Fatalf("dial ws://%s%s: %v", addr, path, err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %d, want 101", resp.StatusCode)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &dashboard{c: c, seen: map[string]bool{}}
}

// next reads the next frame of type typ within d, checking every frame's
// shape on the way (compact JSON, key order type, fields, items; unique
// unit names, case 31).
func (db *dashboard) next(t *testing.T, typ string, within time.Duration) fleetFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		mt, b, err := db.c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting %v for a %s frame: %v", within, typ, err)
		}
		if mt != websocket.MessageText {
			t.Fatalf("frame type %v, want text", mt)
		}
		fr := fleetFrame{raw: string(b)}
		db.seen[fr.raw] = true
		if err := json.Unmarshal(b, &fr); err != nil {
			t.Fatalf("frame %q: %v", b, err)
		}
		wantFields := map[string][]string{"unit": {"unit", "load", "active", "sub", "machine"}, "machine": {"machine", "ip", "metadata"}}[fr.Type]
		if wantFields == nil || !slices.Equal(fr.Fields, wantFields) || fr.Items == nil {
			t.Fatalf("frame %s: want type unit or machine with its fields and an items array", b)
		}
		if want, _ := json.Marshal(wantFields); !strings.HasPrefix(fr.raw, `{"type":"`+fr.Type+`","fields":`+string(want)+`,"items":[`) {
			t.Fatalf("frame %s is not compact JSON in the order type, fields, items", b)
		}
		if fr.Type == "unit" {
			seen := map[string]bool{}
			for _, it := range fr.Items {
				if len(it) != 5 || seen[it[0]] {
					t.Fatalf("unit frame %s: a row is not 5 columns or a unit name repeats (the dashboard keys rows by it)", b)
				}
				seen[it[0]] = true
			}
		}
		if fr.Type == typ {
			return fr
		}
	}
}

func TestCase28FleetFrames(t *testing.T) {
	t.Parallel()
	p := mainStack(t)
	if r := do(t, "POST", p.api+"/v1/pulses", [][2]string{{"Content-Type", "application/json"}}, `{"service":"fleet-28","next_in":3600,"host":"web-1"}`); r.code != http.StatusAccepted {
		t.Fatalf("POST /v1/pulses = %d %s", r.code, r.body)
	}
	db := dialFleet(t, p.listener(t, "fleet"), "/any/path")
	// no snapshot on connect: the next unit poll comes within the 2 s period
	want := []string{"fleet-28", "loaded", "active", "running", "web-1"}
	eventually(t, wait, func() error {
		fr := db.next(t, "unit", 3*time.Second+wait)
		if !slices.ContainsFunc(fr.Items, func(it []string) bool { return slices.Equal(it, want) }) {
			return fmt.Errorf("unit items %q lack %q", fr.Items, want)
		}
		return nil
	})
	db.next(t, "machine", 11*time.Second+wait)
}

func TestCase29FleetRepeatsTwoClientsIgnoresMessages(t *testing.T) {
	t.Parallel()
	p := mainStack(t)
	addr := p.listener(t, "fleet")
	a, b := dialFleet(t, addr, "/"), dialFleet(t, addr, "/dashboard")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.c.Write(ctx, websocket.MessageText, []byte(`{"hello":"server"}`)); err != nil {
		t.Fatal(err)
	}
	// Both clients keep getting unit and machine frames although nothing
	// changes; a's message changed nothing.
	start := time.Now()
	for i := range 2 {
		for _, typ := range []string{"unit", "machine"} {
			a.next(t, typ, 11*time.Second+wait)
			if i == 1 {
				t.Logf("%s frames still arriving %v after connect", typ, time.Since(start).Round(time.Millisecond))
			}
		}
	}
	// The two streams are the same frames: b connected after a, so a got
	// every frame b gets.
	for range 2 {
		frB := b.next(t, "unit", 3*time.Second+wait)
		deadline := time.Now().Add(wait)
		for !a.seen[frB.raw] {
			if time.Now().After(deadline) {
				t.Fatalf("client b got %s, which client a did not get", frB.raw)
			}
			a.next(t, "unit", 3*time.Second+wait)
		}
	}
}

func TestCase30FleetctlStub(t *testing.T) {
	t.Run("endpoint", func(t *testing.T) {
		p, argsLog := plainStack(t)
		db := dialFleet(t, p.listener(t, "combined"), "/") // the combined listener hands upgrades to fleet
		checkStubFrames(t, db)
		checkStubArgs(t, argsLog, "--endpoint http://10.0.0.5:4001 ")
	})
	t.Run("tunnel", func(t *testing.T) {
		stub, argsLog, err := installStub("tunnel")
		if err != nil {
			t.Fatal(err)
		}
		// fleetctl found on PATH, as the original's default -c fleetctl
		p := start(t, "tunnel", `http_addr: 127.0.0.1:0
nats: {listen: "off"}
log: {format: text}
legacy:
  fleet: {addr: 127.0.0.1:0, fleetctl: fleetctl, tunnel: bastion, unit_every: 200ms, machine_every: 300ms}
`, "FLEETCTL_ARGS_LOG="+argsLog, "PATH="+filepath.Dir(stub)+string(os.PathListSeparator)+os.Getenv("PATH"))
		db := dialFleet(t, p.listener(t, "fleet"), "/")
		checkStubFrames(t, db)
		checkStubArgs(t, argsLog, "--tunnel bastion:22 ")
	})
}

func checkStubFrames(t *testing.T, db *dashboard) {
	t.Helper()
	units := db.next(t, "unit", wait)
	wantUnits := [][]string{
		{"web.service", "loaded", "active", "running", "113f16a7a8b94d4e9a62b8d6c4a9e0f1/10.0.0.1"},
		{"db.service", "loaded", "failed", "failed", "-"},
	}
	if !slices.EqualFunc(units.Items, wantUnits, slices.Equal) {
		t.Errorf("unit items %q, want the stub's rows split on whitespace %q", units.Items, wantUnits)
	}
	machines := db.next(t, "machine", wait)
	wantMachines := [][]string{
		{"113f16a7a8b94d4e9a62b8d6c4a9e0f1", "10.0.0.1", "role=web"},
		{"2d2c1a0b9e8f4c7d8a6b5c4d3e2f1a0b", "10.0.0.2", "-"},
	}
	if !slices.EqualFunc(machines.Items, wantMachines, slices.Equal) {
		t.Errorf("machine items %q, want %q", machines.Items, wantMachines)
	}
}

func checkStubArgs(t *testing.T, argsLog, prefix string) {
	t.Helper()
	b, err := os.ReadFile(argsLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, want := range []string{
		prefix + "list-units -l -no-legend -fields unit,load,active,sub,machine",
		prefix + "list-machines -l -no-legend -fields machine,ip,metadata",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("the stub was run with %q, want a run with %q", lines, want)
		}
	}
}

func TestCase31FleetUniqueUnits(t *testing.T) {
	t.Parallel()
	p := mainStack(t)
	// Names that differ only in case or by a character that a naive key
	// would fold stay distinct rows.
	for _, s := range []string{"Unit-31", "unit-31", "unit 31", "unit.31"} {
		body := fmt.Sprintf(`{"service":%q,"next_in":3600}`, s)
		if r := do(t, "POST", p.api+"/v1/pulses", [][2]string{{"Content-Type", "application/json"}}, body); r.code != http.StatusAccepted {
			t.Fatalf("POST /v1/pulses %s = %d %s", s, r.code, r.body)
		}
	}
	db := dialFleet(t, p.listener(t, "fleet"), "/")
	eventually(t, wait, func() error {
		fr := db.next(t, "unit", wait) // next checks that names are unique
		n := 0
		for _, it := range fr.Items {
			if strings.HasSuffix(strings.ToLower(it[0]), "31") {
				n++
			}
		}
		if n != 4 {
			return fmt.Errorf("%d of the 4 services in %q", n, fr.Items)
		}
		return nil
	})
}
