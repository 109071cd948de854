package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-monitor/vigil"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux vigil supports).
const clockTicks = 100

// runAgent builds cmd/vigil-agent as a release build (static, stripped) to
// a temp folder, runs `vigil-agent run` at Scale.AgentInterval against the
// ingest role on loopback NATS, and after Scale.AgentWarmup reads its CPU
// time and RSS over Scale.AgentWindow from /proc. With --vs-node-exporter
// it runs Debian's prometheus-node-exporter beside it, scraped at the same
// interval, and measures it the same way.
func runAgent(ctx context.Context, e *env, r *Result) error {
	if runtime.GOOS != "linux" {
		return errors.New("the agent scenario reads /proc: linux only")
	}
	sc := e.sc
	mod, err := moduleDir(ctx, e.opts.ModuleDir)
	if err != nil {
		return err
	}
	bin := filepath.Join(e.tmp, "vigil-agent")
	e.logf("agent: building %s", bin)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/vigil-agent")
	build.Dir = mod
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/vigil-agent: %w: %s", err, out)
	}
	st, err := startStack(ctx, e.tmp, stackConfig{ingest: true})
	if err != nil {
		return err
	}
	defer func() { _ = st.stop() }()

	var logs bytes.Buffer
	agent := exec.CommandContext(ctx, bin, "run", "--nats-url", st.natsURL, "--interval", sc.AgentInterval.String(),
		"--state-dir", filepath.Join(e.tmp, "agent-state"), "--log-level", "warn")
	agent.Stdout, agent.Stderr = &logs, &logs
	agent.Env = os.Environ()
	if err := agent.Start(); err != nil {
		return err
	}
	defer stopProcess(agent)

	var exporter *exec.Cmd
	if e.opts.VsNodeExporter {
		exporter, err = startNodeExporter(ctx, e, sc.AgentInterval)
		if err != nil {
			return err
		}
		defer stopProcess(exporter)
	}
	e.logf("agent: warm-up %v, then a window of %v", sc.AgentWarmup, sc.AgentWindow)
	sleep(ctx, sc.AgentWarmup)
	a0, err := cpuTicks(agent.Process.Pid)
	if err != nil {
		return fmt.Errorf("vigil-agent: %w (log: %s)", err, logs.String())
	}
	var n0 int64
	if exporter != nil {
		if n0, err = cpuTicks(exporter.Process.Pid); err != nil {
			return fmt.Errorf("node_exporter: %w", err)
		}
	}
	sleep(ctx, sc.AgentWindow)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	report := func(prefix string, pid int, t0 int64, goalRSS, goalCPU string) error {
		t1, err := cpuTicks(pid)
		if err != nil {
			return err
		}
		rss, anon, file, err := rssOf(pid)
		if err != nil {
			return err
		}
		cpu := float64(t1-t0) / clockTicks
		r.add(prefix+"_rss", rss/1e6, "MB").Goal = goalRSS
		r.add(prefix+"_rss_anon", anon/1e6, "MB")
		r.add(prefix+"_rss_file", file/1e6, "MB")
		r.add(prefix+"_cpu", 100*cpu/sc.AgentWindow.Seconds(), "%").Goal = goalCPU
		r.add(prefix+"_cpu_time", cpu*1000, "ms").Note = fmt.Sprintf("over %v (10 ms ticks)", sc.AgentWindow)
		return nil
	}
	r.add("interval", sc.AgentInterval.Seconds(), "s")
	if err := report("agent", agent.Process.Pid, a0, "≤ 15 MB", "≤ 0.25%"); err != nil {
		return fmt.Errorf("vigil-agent: %w (log: %s)", err, logs.String())
	}
	if exporter != nil {
		if err := report("node_exporter", exporter.Process.Pid, n0, "", ""); err != nil {
			return fmt.Errorf("node_exporter: %w", err)
		}
	}
	// The agent must have reported over NATS for the figures to mean
	// anything.
	s, err := st.assets.JS.Stream(ctx, vigil.StreamHostStats)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return fmt.Errorf("vigil-agent stored no host stats in %v (log: %s)", sc.AgentWarmup+sc.AgentWindow, logs.String())
	}
	r.add("agent_reports", float64(info.State.Msgs), "host stats")
	return nil
}

// moduleDir returns dir, or the folder of the module's go.mod as `go env
// GOMOD` names it.
func moduleDir(ctx context.Context, dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the vigil module: run vigil-bench from the repository")
	}
	return filepath.Dir(gomod), nil
}

// startNodeExporter runs prometheus-node-exporter (installing Debian's
// package with apt-get when it is missing) on a free loopback port, and
// scrapes /metrics every interval until ctx ends.
func startNodeExporter(ctx context.Context, e *env, interval time.Duration) (*exec.Cmd, error) {
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		e.logf("agent: installing prometheus-node-exporter (apt-get)")
		out, ierr := exec.CommandContext(ctx, "apt-get", "install", "-y", "prometheus-node-exporter").CombinedOutput()
		if ierr != nil {
			return nil, fmt.Errorf("apt-get install prometheus-node-exporter: %w: %s", ierr, out)
		}
		if bin, err = exec.LookPath("prometheus-node-exporter"); err != nil {
			return nil, err
		}
	}
	l, err := listen(ctx)
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.CommandContext(ctx, bin, "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c := newClient(1)
		defer c.CloseIdleConnections()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			_, _ = get(ctx, c, "http://"+addr+"/metrics")
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return cmd, nil
}

// stopProcess sends SIGTERM and waits up to 10 s before killing.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// cpuTicks returns utime + stime of pid from /proc/<pid>/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// rssOf returns VmRSS, RssAnon and RssFile of pid in bytes, from
// /proc/<pid>/status.
func rssOf(pid int) (rss, anon, file float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, perr := strconv.ParseFloat(f[0], 64)
		if perr != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb * 1024
		case "RssAnon":
			anon = kb * 1024
		case "RssFile":
			file = kb * 1024
		}
	}
	if rss == 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, anon, file, nil
}
