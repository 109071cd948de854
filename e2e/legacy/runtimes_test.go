package legacy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil"
)

// need returns the path of program (python3, java) or skips the test.
func need(t *testing.T, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		t.Skipf("%s is not installed: this case runs the legacy client's logic in it", program)
	}
	return p
}

// run runs a program of testdata and returns its stdout; it fails the
// test with stderr when the program fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runErr runs a program of testdata and returns its stdout, stderr and
// exit error.
func runErr(name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "testdata"
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestCase03TraylertPythonClient decodes the envelope as jsonpickle.decode
// does (stdlib Python) and decrypts it with an EAX written in Java from the
// paper, as the Traylert client's decrypt_and_verify.
func TestCase03TraylertPythonClient(t *testing.T) {
	t.Parallel()
	py, java := need(t, "python3"), need(t, "java")
	p := mainStack(t)
	addr := p.listener(t, "combined")
	if r := raw(t, addr, false, traylertAlert("case 3 from Python ✓")); r.code != 200 {
		t.Fatalf("POST /alert = %d", r.code)
	}
	lastAlerts(t, addr, "case 3 from Python ✓")
	// With another key the tag check fails and the client ends with
	// ValueError, as pycryptodome's decrypt_and_verify raises.
	wrongKey := make(chan string, 1)
	go func() {
		_, stderr, err := runErr(py, "traylert_client.py", "--endpoint_override", "http://"+addr+"/",
			"--key", strings.Repeat("0", 32), "--decrypt", java+" TraylertEAX.java")
		wrongKey <- fmt.Sprintf("%v: %s", err, stderr)
	}()
	out := run(t, py, "traylert_client.py", "--endpoint_override", "http://"+addr+"/", "--key", traylertKey,
		"--decrypt", java+" TraylertEAX.java")
	var got struct {
		Types map[string]string `json:"types"`
		Info  struct {
			Disk   string      `json:"discspace_free (GB)"`
			Memory string      `json:"memory"`
			Alerts [][2]string `json:"alerts"`
		} `json:"info"`
		Menu []string `json:"menu"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	if want := map[string]string{"nonce": "bytes", "tag": "bytes", "ciphertext": "bytes"}; fmt.Sprint(got.Types) != fmt.Sprint(want) {
		t.Errorf("jsonpickle.decode gave %v, want a dict of bytes %v", got.Types, want)
	}
	if !diskRE.MatchString(got.Info.Disk) || !memRE.MatchString(got.Info.Memory) || len(got.Info.Alerts) == 0 ||
		got.Info.Alerts[len(got.Info.Alerts)-1][1] != "case 3 from Python ✓" {
		t.Errorf("decrypted document %+v", got.Info)
	}
	if len(got.Menu) != 2 || !strings.HasPrefix(got.Menu[0], "discspace_free (GB) - ") || !strings.HasPrefix(got.Menu[1], "memory - ") {
		t.Errorf("tray menu %q, want the disk and memory entries", got.Menu)
	}
	if res := <-wrongKey; !strings.Contains(res, "ValueError: MAC check failed") {
		t.Errorf("client with a wrong key: %s; want it to end with ValueError: MAC check failed", res)
	}
}

// TestCase27LegacyClientPrograms runs watchTower's Python test program and
// Java test program against the TLS listener (self-signed certificate,
// password "change me"), as their originals ran against
// https://localhost:4443.
func TestCase27LegacyClientPrograms(t *testing.T) {
	t.Parallel()
	p := mainStack(t)
	_, port, err := net.SplitHostPort(p.listener(t, "watchtower"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("python", func(t *testing.T) {
		t.Parallel()
		py := need(t, "python3")
		out := run(t, py, "watchtower_client.py", "https://localhost", port, wtPassword, "0.2")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 6 || lines[5] != `{"manager_pulses": 1}` {
			t.Fatalf("test.py printed %q", lines)
		}
		var s vigil.ServiceStatus
		for _, name := range []string{"testPython", "my service"} {
			if err := getJSON(t, p.proc, "/v1/services/"+strings.ReplaceAll(name, " ", "%20"), &s); err != nil || s.Status != vigil.StatusCancelled {
				t.Errorf("service %q = %+v, %v; want cancelled (pulsed, then cancelled)", name, s, err)
			}
		}
		eventually(t, wait, func() error {
			evs := wt{t: t, addr: p.listener(t, "watchtower"), tls: true, pw: wtPassword}.events("service=" + q("^test4$") + "&level=4&message=" + q(`^my m"es`))
			if len(evs) == 0 || evs[0]["message"] != "my m\"es\nsage" {
				return fmt.Errorf("events %v, want the message stored as sent", evs)
			}
			return nil
		})
	})
	t.Run("java", func(t *testing.T) {
		t.Parallel()
		java := need(t, "java")
		out := run(t, java, "WatchTowerClient.java", "https://localhost:"+port, wtPassword)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var m map[string]any
		if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &m) != nil || m["result"] != 200.0 || m["action"] != "pulse" {
			t.Fatalf("test.java printed %q, want the pulse's one-line JSON with result 200 first", lines)
		}
		if !slices.Equal(lines[1:], []string{lines[1], `{"result":200}`}) || !strings.Contains(lines[1], `"cancelled":true`) {
			t.Errorf("cancel and add answered %q", lines[1:])
		}
		w := wt{t: t, addr: p.listener(t, "watchtower"), tls: true, pw: wtPassword}
		eventually(t, wait, func() error {
			evs := w.events("service=" + q("^testJava$") + "&level=3")
			if len(evs) == 0 || evs[0]["level"] != 3.0 || evs[0]["message"] != "ok message" {
				return fmt.Errorf("testJava events %v, want level 3", evs)
			}
			return nil
		})
		if hb := w.hb("testJava"); hb["cancelled"] != true {
			t.Errorf("testJava = %v, want cancelled", hb)
		}
	})
}
