// Package compose runs vigil's docker-compose stack (a three-node JetStream
// cluster, two replicas of ingest, watchdog and notifier, one api, the
// gateway and the mail catcher) and breaks it on purpose: under a load of
// 1,000 pulsing services it kills a NATS node, the leading watchdog and a
// notifier, then restarts the whole stack. It checks that no acknowledged
// pulse is lost, every planned death is detected exactly once, no live
// service is declared dead, no mail is sent twice, and it reports the
// watchdog takeover time.
//
// It needs Docker and docker-compose and takes a few minutes, so it runs
// only when VIGIL_COMPOSE_E2E=1 (.ci/run sets it in its own step). With
// VIGIL_COMPOSE_SKIP_BUILD=1 it uses the vigil/*:dev images already built.
package compose

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/client"
	"github.com/vigil-monitor/vigil/internal/auth"
)

// The load: services pulse every interval with next_in and grace; the first
// deathsEarly stop before the faults, the next deathsLate just after.
const (
	services    = 1000
	deathsEarly = 50
	deathsLate  = 50
	interval    = 2 * time.Second
	nextIn      = 6 * time.Second
	grace       = 2 * time.Second
	loadFor     = 60 * time.Second
	earlyAt     = 12 * time.Second
	faultsAt    = 25 * time.Second
	lateAt      = 28 * time.Second
)

func TestComposeStackSurvivesFaults(t *testing.T) {
	if os.Getenv("VIGIL_COMPOSE_E2E") != "1" {
		t.Skip("set VIGIL_COMPOSE_E2E=1 to run the docker-compose stack (needs Docker; a few minutes)")
	}
	st := up(t)
	ctx := context.Background()
	c, err := client.New(st.base, client.WithToken(st.token))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("down mail reaches the catcher", func(t *testing.T) {
		name := "e2e-mail"
		owner := &vigil.Owner{Type: "mail", Target: "oncall@example.com"}
		sec := vigil.Seconds(2 * time.Second)
		if _, err := c.Pulse(ctx, vigil.Pulse{Service: name, NextIn: sec, Grace: &sec, Owner: owner}); err != nil {
			t.Fatal(err)
		}
		m := st.waitMail(t, func(m mail) bool { return slices.Contains(m.To, owner.Target) }, time.Minute)
		t.Logf("down mail: %q", m.Subject)
		if !strings.Contains(m.Subject+m.Body, name) {
			t.Errorf("the mail does not name the service: %q %q", m.Subject, m.Body)
		}
	})

	res := runLoad(t, st, c)
	t.Logf("load: %d pulses acknowledged, %d failed attempts retried", res.acked, res.failed)
	// Park the survivors with a long deadline, then let the requests the
	// load abandoned at its end (timed out at the client, still queued in
	// the gateway or ingest) land before anything is judged: they are
	// stored late, and a pulse stored after a cancel rightly re-arms.
	park := vigil.Seconds(time.Hour)
	for i := deathsEarly + deathsLate; i < services; i++ {
		rec, err := retry(ctx, func() (*vigil.Record, error) {
			return c.Pulse(ctx, vigil.Pulse{Service: svc(i), NextIn: park, Grace: new(vigil.Seconds(grace))})
		})
		if err != nil {
			t.Fatalf("park %s: %v", svc(i), err)
		}
		res.ack(rec)
	}
	st.waitQuiet(t)
	// Reported, not asserted: a timing on 14 containers sharing two cores
	// is a measurement (README "Benchmarks"), not a pass/fail condition.
	t.Logf("watchdog takeover after killing the leader: %v (goal ≤ 5s)", res.takeover)

	// No acknowledged pulse lost: each service's stored record is its last
	// acknowledged pulse or a later one.
	t.Logf("acknowledged pulses lost: %d", lostWrites(t, c, "pulse", res.lastAcked))

	// Survivors are cancelled; every cancel acknowledged must be stored (or
	// followed by a later record).
	cancelled := map[string]uint64{}
	for i := deathsEarly + deathsLate; i < services; i++ {
		rec, err := c.Cancel(ctx, svc(i))
		if err != nil {
			t.Fatalf("cancel %s: %v", svc(i), err)
		}
		if rec.Op != vigil.OpCancel {
			t.Errorf("cancel %s answered op %q", svc(i), rec.Op)
		}
		cancelled[svc(i)] = rec.Seq
	}
	t.Logf("acknowledged cancels lost: %d", lostWrites(t, c, "cancel", cancelled))
	want := deathsEarly + deathsLate
	downs := st.waitDowns(t, want)
	missed, dups, falses, unavailable, shown := 0, 0, 0, 0, 0
	var lateness []time.Duration
	for i := range services {
		as := downs[svc(i)]
		switch {
		case i < want && len(as) == 0:
			missed++
		case i < want && len(as) > 1:
			dups += len(as) - 1
		case i >= want:
			// A down alert is false when a pulse stored before it was
			// judged is newer than the record it judged. A service whose
			// pulses all failed for longer than next_in + grace (the
			// stack refusing writes during a fault) rightly went down.
			var wrong []vigil.Alert
			for _, a := range as {
				if res.newerBefore(a.Service, a.DownSeq, a.At) {
					wrong = append(wrong, a)
				}
			}
			falses += len(wrong)
			unavailable += len(as) - len(wrong)
			for _, a := range wrong[:min(len(wrong), 3)] {
				if shown < 20 {
					shown++
					t.Logf("false death %s: id %s at %s last_pulse %s deadline %s down_seq %d batch %s",
						a.Service, a.ID, a.At.Format(time.StampMilli), a.LastPulse.Format(time.StampMilli),
						a.Deadline.Format(time.StampMilli), a.DownSeq, a.Batch)
				}
			}
		}
		for _, a := range as {
			lateness = append(lateness, a.At.Sub(a.Deadline))
		}
	}
	slices.Sort(lateness)
	t.Logf("planned deaths %d: missed %d, duplicate alerts %d, false deaths %d; lateness p50 %v max %v",
		want, missed, dups, falses, pct(lateness, 50), pct(lateness, 100))
	t.Logf("survivor downs after every pulse attempt failed for next_in + grace (writes refused during the faults): %d", unavailable)
	if missed+dups+falses > 0 {
		t.Errorf("want every planned death detected exactly once and no false death")
	}

	mails := st.waitMails(t, want)
	perTarget := map[string]int{}
	for _, m := range mails {
		for _, to := range m.To {
			if strings.HasPrefix(to, "load-") {
				perTarget[to]++
			}
		}
	}
	dupMails, missing := 0, 0
	for i := range want {
		switch n := perTarget[target(i)]; {
		case n == 0:
			missing++
		case n > 1:
			dupMails += n - 1
		}
	}
	t.Logf("down mails: %d targets reached, %d missing, %d duplicates", len(perTarget), missing, dupMails)
	if dupMails > 0 || missing > 0 {
		t.Errorf("want one mail per planned death")
	}

	// A restart of the whole stack keeps every service's state.
	before := st.states(t, c)
	st.compose(t, "stop")
	st.compose(t, "start")
	st.waitReady(t)
	after := st.states(t, c)
	if len(after) != len(before) {
		t.Errorf("after a restart %d services, before %d", len(after), len(before))
	}
	changed := 0
	for name, s := range before {
		// The load's services; the agent's host:… pulse may go late while
		// the whole stack is stopped.
		if strings.HasPrefix(name, "load-") && after[name] != s {
			if changed < 10 {
				t.Logf("%s: %+v before the restart, %+v after", name, s, after[name])
			}
			changed++
		}
	}
	t.Logf("restart: %d services, %d changed status", len(after), changed)
	if changed > 0 {
		t.Errorf("%d services changed status across a restart", changed)
	}

	// Ingest throughput through the stack (gateway, two ingest replicas,
	// R3), then through the single-process default with the stack paused,
	// in the same run: reported, not asserted (every container shares the
	// machine's cores).
	stackRate := ingestRate(t, c, throughputFor)
	st.compose(t, "pause")
	single := startSingle(t)
	sc, err := client.New(single)
	if err != nil {
		t.Fatal(err)
	}
	singleRate := ingestRate(t, sc, throughputFor)
	st.compose(t, "unpause")
	t.Logf("ingest, single pulses, 32 clients, %v each: compose stack %.0f/s, vigil all %.0f/s, ratio %.2f",
		throughputFor, stackRate, singleRate, stackRate/singleRate)
}

const throughputFor = 10 * time.Second

// lostWrites counts the services of acked (name → sequence of the last
// acknowledged write of kind what) whose stored record is older than that
// write, and fails the test for each.
func lostWrites(t *testing.T, c *client.Client, what string, acked map[string]uint64) int {
	t.Helper()
	lost := 0
	for name, seq := range acked {
		s, err := c.Service(context.Background(), name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		if s.Seq < seq {
			lost++
			t.Errorf("%s: stored seq %d, last acknowledged %s %d", name, s.Seq, what, seq)
		}
	}
	return lost
}

// TestComposeSecure runs the stack with docker-compose.secure.yml: TLS with
// a private CA on the NATS client port, mutual TLS on the cluster routes,
// and each role and the agent on its own least-privilege nkey identity. A
// pulse goes down and its mail reaches the catcher, the agent's stats
// arrive, and a NATS client without the CA and an identity is refused.
func TestComposeSecure(t *testing.T) {
	if os.Getenv("VIGIL_COMPOSE_E2E") != "1" {
		t.Skip("set VIGIL_COMPOSE_E2E=1 to run the docker-compose stack (needs Docker; a few minutes)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gen := exec.Command("deploy/nats/gen-certs.sh")
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("gen-certs: %v\n%s", err, out)
	}
	st := up(t, "docker-compose.yml", "docker-compose.secure.yml")
	ctx := context.Background()
	c, err := client.New(st.base, client.WithToken(st.token))
	if err != nil {
		t.Fatal(err)
	}
	owner := &vigil.Owner{Type: "mail", Target: "secure@example.com"}
	sec := vigil.Seconds(2 * time.Second)
	if _, err := c.Pulse(ctx, vigil.Pulse{Service: "e2e-secure", NextIn: sec, Grace: &sec, Owner: owner}); err != nil {
		t.Fatal(err)
	}
	m := st.waitMail(t, func(m mail) bool { return slices.Contains(m.To, owner.Target) }, 2*time.Minute)
	t.Logf("down mail over the secured cluster: %q", m.Subject)

	deadline := time.Now().Add(2 * time.Minute)
	for {
		var page struct{ Items []json.RawMessage }
		if err := st.getAPI("/v1/hosts", &page); err == nil && len(page.Items) > 0 {
			t.Logf("agent stats over TLS with its own identity: %s", page.Items[0])
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no host stats from the agent within 2 minutes")
		}
		time.Sleep(time.Second)
	}

	if nc, err := nats.Connect(st.natsURL, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a plain NATS client without the CA or an identity was admitted")
	}
}

// ingestRate posts single pulses from 32 clients for d and returns the
// acknowledged pulses per second.
func ingestRate(t *testing.T, c *client.Client, d time.Duration) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 32 {
		wg.Go(func() {
			n := 0
			p := vigil.Pulse{Service: fmt.Sprintf("tp-%02d", w), NextIn: vigil.Seconds(time.Hour)}
			for ctx.Err() == nil {
				if _, err := c.Pulse(ctx, p); err == nil {
					n++
				}
			}
			mu.Lock()
			acked += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return float64(acked) / time.Since(start).Seconds()
}

// startSingle builds and starts the vigil binary in its default
// single-process mode on a free loopback port and returns its base URL.
func startSingle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/vigil").CombinedOutput(); err != nil {
		t.Fatalf("build vigil: %v\n%s", err, out)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "all", "--data-dir", filepath.Join(dir, "data"),
		"--http-addr", "127.0.0.1:"+port, "--nats-listen", "off", "--log-level", "warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(30 * time.Second)
	for getJSON(base+"/readyz", new(json.RawMessage)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("vigil all not ready within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base
}

func svc(i int) string    { return fmt.Sprintf("load-%04d", i) }
func target(i int) string { return svc(i) + "@example.com" }

type loadResult struct {
	acked, failed int
	lastAcked     map[string]uint64
	stored        map[string][]*vigil.Record // acknowledged records per service
	takeover      time.Duration
}

func (r *loadResult) ack(rec *vigil.Record) {
	r.acked++
	r.lastAcked[rec.Service] = max(r.lastAcked[rec.Service], rec.Seq)
	r.stored[rec.Service] = append(r.stored[rec.Service], rec)
}

// newerBefore reports whether an acknowledged record of service newer than
// seq was received by ingest at or before at.
func (r *loadResult) newerBefore(service string, seq uint64, at time.Time) bool {
	for _, rec := range r.stored[service] {
		if rec.Seq > seq && !rec.At.After(at) {
			return true
		}
	}
	return false
}

// retry calls fn until it succeeds, ten times at most, a second apart.
func retry(ctx context.Context, fn func() (*vigil.Record, error)) (*vigil.Record, error) {
	var err error
	for range 10 {
		var rec *vigil.Record
		if rec, err = fn(); err == nil {
			return rec, nil
		}
		if !sleepUntil(ctx, time.Now().Add(time.Second)) {
			break
		}
	}
	return nil, err
}

// runLoad pulses every service each interval for loadFor, stops the planned
// deaths on time, and at faultsAt kills a NATS node, the leading watchdog
// and a notifier; it measures how long the other watchdog takes to lead.
func runLoad(t *testing.T, st *stack, c *client.Client) loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), loadFor)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	res := loadResult{lastAcked: map[string]uint64{}, stored: map[string][]*vigil.Record{}}
	var wg sync.WaitGroup
	for i := range services {
		stopAt := loadFor
		switch {
		case i < deathsEarly:
			stopAt = earlyAt
		case i < deathsEarly+deathsLate:
			stopAt = lateAt
		}
		p := vigil.Pulse{Service: svc(i), NextIn: vigil.Seconds(nextIn), Grace: new(vigil.Seconds(grace))}
		if i < deathsEarly+deathsLate {
			p.Owner = &vigil.Owner{Type: "mail", Target: target(i)}
		}
		wg.Go(func() {
			// Spread the services over the interval.
			next := start.Add(time.Duration(i) * interval / services)
			for {
				if !sleepUntil(ctx, next) || time.Since(start) >= stopAt {
					return
				}
				next = next.Add(interval)
				for ctx.Err() == nil && time.Now().Before(next) {
					rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
					rec, err := c.Pulse(rctx, p)
					rcancel()
					mu.Lock()
					if err == nil {
						res.ack(rec)
					} else {
						res.failed++
					}
					mu.Unlock()
					if err == nil {
						break
					}
					sleepUntil(ctx, time.Now().Add(250*time.Millisecond))
				}
			}
		})
	}

	sleepUntil(ctx, start.Add(faultsAt))
	leader, other := st.watchdogs(t)
	st.docker(t, "kill", st.container(t, "nats2", 0))
	st.docker(t, "kill", st.container(t, "notifier", 0))
	killed := time.Now()
	st.docker(t, "kill", leader)
	res.takeover = st.waitLeader(t, other).Sub(killed)
	wg.Wait()
	return res
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	tm := time.NewTimer(time.Until(at))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[(len(d)-1)*p/100]
}

// stack is one running compose project.
type stack struct {
	project, dir, token    string
	base, mailURL, natsURL string
	env, files             []string
}

// built makes the images once per test process.
var built sync.Once

// up starts a compose project from files (docker-compose.yml when none)
// and waits until it is ready; it is taken down when the test ends.
func up(t *testing.T, files ...string) *stack {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{project: fmt.Sprintf("vigil-e2e-%d-%d", os.Getpid(), len(files)), dir: root, files: files}
	httpPort, mailPort, natsPort := freePort(t), freePort(t), freePort(t)
	// The stack runs with a fresh write token, not the dev default
	// VIGIL_INSECURE: every request of the test proves tokens work through
	// the gateway.
	token, err := auth.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st.token = token
	st.env = append(os.Environ(),
		"VIGIL_HTTP_PORT="+httpPort, "VIGIL_MAILSINK_PORT="+mailPort, "VIGIL_NATS_PORT="+natsPort,
		"VIGIL_INSECURE=false", "VIGIL_AUTH_TOKENS=e2e:"+auth.Hash(token)+":write")
	st.base = "http://127.0.0.1:" + httpPort
	st.mailURL = "http://127.0.0.1:" + mailPort
	st.natsURL = "nats://127.0.0.1:" + natsPort
	if os.Getenv("VIGIL_COMPOSE_SKIP_BUILD") != "1" {
		built.Do(func() { st.run(t, exec.Command("deploy/build-images.sh")) })
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := st.cmd("logs", "--no-color", "--tail=200").CombinedOutput()
			t.Logf("compose logs (tail):\n%s", out)
		}
		if t.Failed() && os.Getenv("VIGIL_COMPOSE_KEEP") == "1" {
			t.Logf("VIGIL_COMPOSE_KEEP=1: project %s left running", st.project)
			return
		}
		if out, err := st.cmd("down", "-v", "--remove-orphans").CombinedOutput(); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	st.compose(t, "up", "-d")
	st.waitReady(t)
	return st
}

func (st *stack) cmd(args ...string) *exec.Cmd {
	pre := []string{"-p", st.project}
	for _, f := range st.files {
		pre = append(pre, "-f", f)
	}
	c := exec.Command("docker-compose", append(pre, args...)...)
	c.Dir, c.Env = st.dir, st.env
	return c
}

func (st *stack) compose(t *testing.T, args ...string) string {
	t.Helper()
	return st.run(t, st.cmd(args...))
}

func (st *stack) docker(t *testing.T, args ...string) string {
	t.Helper()
	return st.run(t, exec.Command("docker", args...))
}

func (st *stack) run(t *testing.T, c *exec.Cmd) string {
	t.Helper()
	if c.Dir == "" {
		c.Dir, c.Env = st.dir, st.env
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(c.Args, " "), err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// container returns the id of replica i of a compose service.
func (st *stack) container(t *testing.T, service string, i int) string {
	t.Helper()
	ids := strings.Fields(st.compose(t, "ps", "-q", service))
	sort.Strings(ids)
	if i >= len(ids) {
		t.Fatalf("service %s has %d containers, want replica %d", service, len(ids), i)
	}
	return ids[i]
}

// watchdogs returns the leading watchdog's container id and the base URL
// of the other one.
func (st *stack) watchdogs(t *testing.T) (leader, otherURL string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		leader, otherURL = "", ""
		for _, id := range strings.Fields(st.compose(t, "ps", "-q", "watchdog")) {
			ip := st.docker(t, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id)
			u := "http://" + ip + ":8080"
			if st.isLeader(u) {
				leader = id
			} else {
				otherURL = u
			}
		}
		if leader != "" && otherURL != "" {
			return leader, otherURL
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("no leading watchdog and standby found")
	return "", ""
}

func (st *stack) isLeader(base string) bool {
	var w struct {
		Leader bool `json:"leader"`
	}
	req, err := http.NewRequest(http.MethodGet, base+"/v1/watchdog", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+st.token)
	return doJSON(req, &w) == nil && w.Leader
}

// waitLeader polls the standby until it leads and returns when it did.
func (st *stack) waitLeader(t *testing.T, base string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st.isLeader(base) {
			return time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the standby watchdog did not take over within 30 s")
	return time.Time{}
}

// waitReady waits until the gateway takes a pulse and the api lists services.
func (st *stack) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		var page struct{ Items []json.RawMessage }
		last = st.getAPI("/v1/services?limit=1", &page)
		if last == nil {
			// Through the gateway to an ingest replica that is ready.
			last = st.pulseReady()
		}
		if last == nil {
			last = getJSON(st.mailURL+"/api/messages", new(struct{}))
		}
		if last == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("stack not ready within 3 minutes: %v", last)
}

// state is what a restart must keep of a service: its last record and
// whether it is down or cancelled. Up and late are not compared: a service
// turns late and down across a restart just by time passing.
type state struct {
	Seq    uint64
	Status vigil.Status
}

func (st *stack) states(t *testing.T, c *client.Client) map[string]state {
	t.Helper()
	all, err := c.AllServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]state, len(all))
	for _, s := range all {
		v := state{Seq: s.Seq, Status: s.Status}
		if v.Status == vigil.StatusLate || v.Status == vigil.StatusUp {
			v.Status = ""
		}
		out[s.Name] = v
	}
	return out
}

// waitQuiet waits until the pulse bucket's stream takes no write for 3 s
// (at most 90 s), so that requests abandoned by the load have landed.
func (st *stack) waitQuiet(t *testing.T) {
	t.Helper()
	nc, err := nats.Connect(st.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	var last uint64
	quietSince := time.Now()
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, "KV_"+vigil.BucketPulses)
		cancel()
		if err == nil {
			if seq := s.CachedInfo().State.LastSeq; seq != last {
				last, quietSince = seq, time.Now()
			} else if time.Since(quietSince) >= 3*time.Second {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatal("the pulse stream did not go quiet within 90 s of the load's end")
}

// waitDowns reads every down alert from VIGIL_ALERTS over NATS until want
// services have one (or a minute passes) and returns them by service.
func (st *stack) waitDowns(t *testing.T, want int) map[string][]vigil.Alert {
	t.Helper()
	nc, err := nats.Connect(st.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		downs := map[string][]vigil.Alert{}
		err := readAlerts(js, func(a vigil.Alert) {
			if a.Kind == vigil.AlertDown && strings.HasPrefix(a.Service, "load-") {
				downs[a.Service] = append(downs[a.Service], a)
			}
		})
		switch {
		case err != nil && time.Now().After(deadline):
			t.Fatalf("read alerts: %v", err)
		case err == nil && (len(downs) >= want || time.Now().After(deadline)):
			return downs
		}
		time.Sleep(time.Second)
	}
}

func readAlerts(js jetstream.JetStream, fn func(vigil.Alert)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, vigil.StreamAlerts)
	if err != nil {
		return err
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			var a vigil.Alert
			if err := json.Unmarshal(m.Data(), &a); err != nil {
				return err
			}
			fn(a)
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			if md.Sequence.Stream >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
	}
}

type mail struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Body    string   `json:"body"`
}

func (st *stack) mails() ([]mail, error) {
	var page struct{ Items []mail }
	err := getJSON(st.mailURL+"/api/messages", &page)
	return page.Items, err
}

func (st *stack) waitMail(t *testing.T, match func(mail) bool, within time.Duration) mail {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ms, err := st.mails()
		if err == nil {
			for _, m := range ms {
				if match(m) {
					return m
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no matching mail within %v", within)
	return mail{}
}

// waitMails waits until want load- targets got mail (or two minutes pass),
// then a little longer for duplicates, and returns every mail.
func (st *stack) waitMails(t *testing.T, want int) []mail {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ms, err := st.mails()
		if err != nil {
			t.Fatal(err)
		}
		reached := map[string]bool{}
		for _, m := range ms {
			for _, to := range m.To {
				if strings.HasPrefix(to, "load-") {
					reached[to] = true
				}
			}
		}
		if len(reached) >= want || time.Now().After(deadline) {
			return ms
		}
		time.Sleep(time.Second)
	}
}

// pulseReady stores a pulse of service e2e-ready through the gateway.
func (st *stack) pulseReady() error {
	req, err := http.NewRequest(http.MethodPost, st.base+"/v1/pulses", strings.NewReader(`{"service":"e2e-ready","next_in":86400}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+st.token)
	req.Header.Set("Content-Type", "application/json")
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return errors.New("pulse: " + resp.Status)
	}
	return nil
}

// getAPI GETs path from the gateway with the stack's token.
func (st *stack) getAPI(path string, v any) error {
	req, err := http.NewRequest(http.MethodGet, st.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+st.token)
	return doJSON(req, v)
}

func getJSON(url string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return doJSON(req, v)
}

func doJSON(req *http.Request, v any) error {
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(req.URL.String() + ": " + resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
