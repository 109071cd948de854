package legacy

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
)

// kv is one key of a Python dict; obj keeps the keys in insertion order.
type kv struct {
	k string
	v any
}

type obj []kv

// pyDumps encodes v as Python's json.dumps with its defaults (", " and
// ": " separators, ensure_ascii): what requests sends for json=.
func pyDumps(v any) string {
	var b strings.Builder
	var enc func(any)
	enc = func(v any) {
		switch x := v.(type) {
		case nil:
			b.WriteString("null")
		case string:
			q := strconv.QuoteToASCII(x) // the strings here need only \\ and \" escapes
			b.WriteString(q)
		case int:
			b.WriteString(strconv.Itoa(x))
		case float64:
			s := strconv.FormatFloat(x, 'f', -1, 64)
			if !strings.Contains(s, ".") {
				s += ".0"
			}
			b.WriteString(s)
		case []any:
			b.WriteByte('[')
			for i, e := range x {
				if i > 0 {
					b.WriteString(", ")
				}
				enc(e)
			}
			b.WriteByte(']')
		case obj:
			b.WriteByte('{')
			for i, e := range x {
				if i > 0 {
					b.WriteString(", ")
				}
				enc(e.k)
				b.WriteString(": ")
				enc(e.v)
			}
			b.WriteByte('}')
		default:
			panic(fmt.Sprintf("pyDumps: %T", v))
		}
	}
	enc(v)
	return b.String()
}

// agentPost is the request the System Monitor agent sends for body:
// requests.post(url, json=body) with requests' default headers.
func agentPost(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\nHost: 127.0.0.1:5000\nUser-Agent: python-requests/2.32.3\n"+
		"Accept-Encoding: gzip, deflate\nAccept: */*\nConnection: close\nContent-Length: %d\n"+
		"Content-Type: application/json\n\n%s", path, len(body), body)
}

// sendStats is a v0.4.3 send_stats body (src/system_monitor.py), keys in
// the agent's order, with a float frequency, null usernames and netmasks,
// and n processes.
func sendStats(systemID string, epoch int64, n int) string {
	var procs []any
	for i := range n {
		var user any = `DESKTOP-7Q2K9LM\alice`
		switch i % 7 {
		case 0:
			user = nil // access denied
		case 1, 2:
			user = `NT AUTHORITY\SYSTEM`
		}
		var name any = fmt.Sprintf("process-%03d-%s.exe", i, strings.Repeat("x", i%23))
		if i == 0 {
			name = "System Idle Process"
		}
		procs = append(procs, obj{{"pid", 4 * (i + 1)}, {"name", name}, {"username", user}})
	}
	body := obj{
		{"action", "send_stats"},
		{"system_id", systemID},
		{"url", "http://127.0.0.1:5000"},
		{"interval", 60},
		{"epoch", int(epoch)},
		{"stats", obj{
			{"cpu", obj{{"count", 8}, {"percent_used", 12.5}, {"frequency", 2803.0}}},
			{"memory", obj{{"total", 17041244160}, {"available", 9123123200}, {"used", 7918120960}, {"free", 9123123200}, {"percent_used", 46.5}}},
			{"disks", obj{
				{`C:\`, obj{{"total", 511101108224}, {"used", 201101108224}, {"free", 310000000000}, {"file_system", "NTFS"}, {"mount_point", `C:\`}}},
				{`D:\`, obj{{"total", 1000202039296}, {"used", 1000202039}, {"free", 999201837257}, {"file_system", "exFAT"}, {"mount_point", `D:\`}}},
			}},
			{"processes", procs},
			{"network", obj{
				{"Ethernet", obj{{"ip", "192.168.1.23"}, {"netmask", "255.255.255.0"}, {"bytes_sent", 123456789}, {"bytes_recv", 987654321}}},
				{"Loopback Pseudo-Interface 1", obj{{"ip", "127.0.0.1"}, {"netmask", nil}, {"bytes_sent", 0}, {"bytes_recv", 0}}},
			}},
		}},
	}
	return pyDumps(body)
}

// preV04Stats is the body of an agent before v0.4 (f3a83a3): no action,
// windows_uuid, stats.cpu_usage, memory_usage, disk_usage, network_info.
func preV04Stats(systemID string, epoch int64) string {
	return pyDumps(obj{
		{"system_id", systemID},
		{"url", "http://127.0.0.1:5000"},
		{"interval", 60},
		{"windows_uuid", "Not Windows"},
		{"epoch", int(epoch)},
		{"stats", obj{
			{"cpu_usage", 7.25},
			{"memory_usage", 61.5},
			{"disk_usage", obj{{"total", 250790436864}, {"used", 100316174336}, {"free", 150474262528}}},
			{"processes", []any{obj{{"pid", 1}, {"name", "systemd"}, {"username", "root"}}}},
			{"network_info", obj{{"eth0", obj{{"ip", "10.1.2.3"}, {"netmask", "255.255.0.0"}, {"bytes_sent", 1}, {"bytes_recv", 2}}}}},
		}},
	})
}

// sysmonTarget is where an agent posts: a listener and a path.
type sysmonTarget struct {
	name, addr, path string
}

// sysmonTargets are the shared vigil's combined listener at / and at a
// non-root path (System Monitor is served on any path there), and the
// second vigil's own System Monitor listener under its /sysmon prefix.
func sysmonTargets(t *testing.T) []sysmonTarget {
	t.Helper()
	p := mainStack(t)
	pp, _ := plainStack(t)
	return []sysmonTarget{
		{"root", p.listener(t, "combined"), "/"},
		{"non-root", p.listener(t, "combined"), "/monitoring/agent"},
		{"prefix", pp.listener(t, "sysmon"), "/sysmon"},
	}
}

// hostStats polls GET /v1/hosts/{id} of p until it answers.
func hostStats(t *testing.T, p *proc, id string) vigil.HostStats {
	t.Helper()
	var hs vigil.HostStats
	eventually(t, wait, func() error { return getJSON(t, p, "/v1/hosts/"+url.PathEscape(id), &hs) })
	return hs
}

// procOf returns the vigil behind a target.
func procOf(t *testing.T, tg sysmonTarget) *proc {
	if tg.name == "prefix" {
		p, _ := plainStack(t)
		return p
	}
	return mainStack(t).proc
}

func TestCase32SysMonCheckURL(t *testing.T) {
	for _, tg := range sysmonTargets(t) {
		if r := raw(t, tg.addr, false, agentPost(tg.path, `{"action": "check_url"}`)); r.code != http.StatusAccepted || r.body != "" {
			t.Errorf("%s: check_url = %d %q, want 202 with an empty body", tg.name, r.code, r.body)
		}
	}
}

func TestCase33SysMonCheckSystemID(t *testing.T) {
	for _, tg := range sysmonTargets(t) {
		id := "Linux-" + strings.Repeat("3", 28) + "33" + tg.name
		if r := raw(t, tg.addr, false, agentPost(tg.path, sendStats(id, time.Now().Unix(), 3))); r.code != http.StatusOK {
			t.Fatalf("%s: send_stats = %d", tg.name, r.code)
		}
		hostStats(t, procOf(t, tg), id)
		for _, c := range []struct {
			id   string
			want int
		}{{id, http.StatusOK}, {"Windows-00000000000000000000000000000000", http.StatusNoContent}, {"", http.StatusNoContent}} {
			body := pyDumps(obj{{"action", "check_system_id"}, {"system_id", c.id}})
			if r := raw(t, tg.addr, false, agentPost(tg.path, body)); r.code != c.want || r.body != "" {
				t.Errorf("%s: check_system_id %q = %d %q, want %d", tg.name, c.id, r.code, r.body, c.want)
			}
		}
	}
}

func TestCase34SysMonSendStats(t *testing.T) {
	for _, tg := range sysmonTargets(t) {
		id := "Windows-9e107d9d372bb6826bd81d3542a419d6" + "-" + tg.name
		epoch := time.Now().Add(-time.Minute).Unix()
		n := 300
		body := sendStats(id, epoch, n)
		for len(body) <= 50<<10 {
			n += 50
			body = sendStats(id, epoch, n)
		}
		if r := raw(t, tg.addr, false, agentPost(tg.path, body)); r.code != http.StatusOK || r.body != "" {
			t.Fatalf("%s: send_stats of %d bytes, %d processes = %d %q, want 200", tg.name, len(body), n, r.code, r.body)
		}
		hs := hostStats(t, procOf(t, tg), id)
		if !hs.At.Equal(time.Unix(epoch, 0)) || hs.CPU.Frequency != 2803 || hs.CPU.Count != 8 ||
			hs.ProcessCount != n || len(hs.Processes) != n || hs.Processes[0].Username != "" || hs.Processes[0].Name != "System Idle Process" ||
			hs.Memory.Total != 17041244160 || len(hs.Disks) != 2 || len(hs.Network) != 2 {
			got, _ := json.Marshal(hs)
			t.Errorf("%s: stored stats %.600s…, want the body's (epoch %d, %d processes)", tg.name, got, epoch, n)
		}
		if tg.name == "root" {
			t.Logf("send_stats body: %d bytes, %d processes", len(body), n)
		}
	}
}

func TestCase35SysMonUnknownAction(t *testing.T) {
	for _, tg := range sysmonTargets(t) {
		if r := raw(t, tg.addr, false, agentPost(tg.path, `{"action": "bogus"}`)); r.code != http.StatusBadRequest {
			t.Errorf("%s: bogus action = %d, want 400", tg.name, r.code)
		}
	}
}

func TestCase36SysMonPreV04(t *testing.T) {
	for _, tg := range sysmonTargets(t) {
		id := "linux-pre04-" + tg.name
		epoch := time.Now().Add(-2 * time.Minute).Unix()
		if r := raw(t, tg.addr, false, agentPost(tg.path, preV04Stats(id, epoch))); r.code != http.StatusOK {
			t.Fatalf("%s: pre-0.4 body = %d %q, want 200", tg.name, r.code, r.body)
		}
		hs := hostStats(t, procOf(t, tg), id)
		if !hs.At.Equal(time.Unix(epoch, 0)) || hs.CPU.PercentUsed != 7.25 || hs.Memory.PercentUsed != 61.5 ||
			len(hs.Disks) != 1 || hs.Disks[0].MountPoint != "/" || len(hs.Network) != 1 || hs.Network[0].IP != "10.1.2.3" ||
			math.Abs(hs.Disks[0].PercentUsed-40) > 0.01 {
			t.Errorf("%s: stored %+v", tg.name, hs)
		}
	}
}

// TestCase37SysMonNonRootPath runs cases 32–36 on the non-root paths alone
// (the other tests run every target, these included), so the case has a
// test of its own: the agent posts to whatever URL it is configured with.
func TestCase37SysMonNonRootPath(t *testing.T) {
	for _, tg := range sysmonTargets(t)[1:] {
		if r := raw(t, tg.addr, false, agentPost(tg.path, `{"action": "check_url"}`)); r.code != http.StatusAccepted {
			t.Errorf("%s %s: check_url = %d, want 202", tg.name, tg.path, r.code)
		}
		if r := raw(t, tg.addr, false, agentPost(tg.path, `{"action": "check_system_id", "system_id": ""}`)); r.code != http.StatusNoContent {
			t.Errorf("%s %s: check_system_id \"\" = %d, want 204", tg.name, tg.path, r.code)
		}
		if r := raw(t, tg.addr, false, agentPost(tg.path, `{"action": "bogus"}`)); r.code != http.StatusBadRequest {
			t.Errorf("%s %s: bogus = %d, want 400", tg.name, tg.path, r.code)
		}
	}
}
