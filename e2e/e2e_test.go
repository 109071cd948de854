// Package e2e runs the vigil binary as real processes and kills them with
// SIGKILL, to check what no in-process test can: acknowledged pulses survive
// a crash, a restarted watchdog raises no false deaths, and vigil's own
// downtime becomes one monitoring-gap alert.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
)

const wait = 30 * time.Second

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "vigil")
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/vigil").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build vigil: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	http string
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

var readyLine = regexp.MustCompile(`msg="vigil ready" http_addr=(\S+)`)

// start runs vigil with args and waits for its "vigil ready" log line.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := readyLine.FindStringSubmatch(line); m != nil {
				ready <- m[1]
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case addr := <-ready:
		p.http = "http://" + addr
	case <-p.done:
		t.Fatalf("vigil %v exited before ready:\n%s", args, p.logs())
	case <-time.After(wait):
		t.Fatalf("vigil %v not ready after %v:\n%s", args, wait, p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func postPulse(base, name string, nextIn float64) (int, error) {
	body := fmt.Sprintf(`{"service":%q,"next_in":%v}`, name, nextIn)
	resp, err := http.Post(base+"/v1/pulses", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func services(t *testing.T, base string) map[string]vigil.ServiceStatus {
	t.Helper()
	out := map[string]vigil.ServiceStatus{}
	cursor := ""
	for {
		resp, err := http.Get(base + "/v1/services?limit=1000&cursor=" + cursor)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items      []vigil.ServiceStatus `json:"items"`
			NextCursor string                `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Items {
			out[s.Name] = s
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

// alertWatch follows VIGIL_ALERTS on a NATS server.
type alertWatch struct {
	mu     sync.Mutex
	all    []vigil.Alert
	change chan struct{}
}

func watchAlerts(t *testing.T, url string) *alertWatch {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	aw := &alertWatch{change: make(chan struct{}, 1)}
	var c jetstream.Consumer
	deadline := time.Now().Add(wait)
	for {
		c, err = js.OrderedConsumer(context.Background(), vigil.StreamAlerts, jetstream.OrderedConsumerConfig{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the stream appears when a role provisions it
	}
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		var a vigil.Alert
		_ = json.Unmarshal(m.Data(), &a)
		aw.mu.Lock()
		aw.all = append(aw.all, a)
		aw.mu.Unlock()
		select {
		case aw.change <- struct{}{}:
		default:
		}
	}, jetstream.PullExpiry(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return aw
}

func (aw *alertWatch) of(kind vigil.AlertKind) []vigil.Alert {
	aw.mu.Lock()
	defer aw.mu.Unlock()
	var out []vigil.Alert
	for _, a := range aw.all {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func (aw *alertWatch) waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(wait)
	for !ok() {
		select {
		case <-aw.change:
		case <-deadline:
			t.Fatalf("waited %v for %s", wait, what)
		}
	}
}
