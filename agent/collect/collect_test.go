package collect

import (
	"context"
	"os"
	"os/user"
	"runtime"
	"testing"
	"time"
)

func TestCollectThisHost(t *testing.T) {
	c := New(Options{Processes: true, FirstSample: 20 * time.Millisecond, Agent: "test"})
	ctx := context.Background()
	now := time.Now()
	s, err := c.Collect(ctx, "Linux-test", now)
	if err != nil {
		t.Logf("partial collection: %v", err)
	}
	if s == nil {
		t.Fatal("Collect returned no snapshot")
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}
	if s.Host != "Linux-test" || !s.At.Equal(now.UTC()) || s.Agent != "test" || s.OS != runtime.GOOS {
		t.Errorf("header = %q %v %q %q", s.Host, s.At, s.Agent, s.OS)
	}
	if s.CPU.Count < 1 {
		t.Errorf("cpu count = %d", s.CPU.Count)
	}
	m := s.Memory
	if m.Total == 0 || m.Used > m.Total || m.Available > m.Total || m.Free > m.Total || m.PercentUsed <= 0 {
		t.Errorf("memory = %+v", m)
	}
	for _, d := range s.Disks {
		if d.MountPoint == "" || d.Total == 0 || d.Used > d.Total {
			t.Errorf("disk = %+v", d)
		}
	}
	me := int32(os.Getpid())
	var found bool
	for _, p := range s.Processes {
		if p.PID == me {
			found = true
			u, err := user.Current()
			if err == nil && p.Username != u.Username {
				t.Errorf("own process user = %q, want %q", p.Username, u.Username)
			}
			if p.Name == "" {
				t.Error("own process has no name")
			}
		}
	}
	if !found || s.ProcessCount != len(s.Processes) {
		t.Errorf("own pid %d listed %v; process_count %d of %d", me, found, s.ProcessCount, len(s.Processes))
	}
	if runtime.GOOS == "linux" {
		if s.Load == nil || s.Uptime == 0 || s.BootTime == 0 {
			t.Errorf("load %+v uptime %d boot %d", s.Load, s.Uptime, s.BootTime)
		}
		for _, n := range s.Network {
			if n.Name == "lo" && (n.IP != "127.0.0.1" || n.Netmask != "255.0.0.0") {
				t.Errorf("lo = %+v, want 127.0.0.1/255.0.0.0", n)
			}
		}
	}
	if s.Self == nil || s.Self.RSS == 0 {
		t.Errorf("agent cost = %+v", s.Self)
	}

	// Later collections measure CPU since the previous one: they do not
	// wait FirstSample again.
	c.opts.FirstSample = time.Hour
	ctx2, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := c.CPU(ctx2); err != nil {
		t.Fatalf("second CPU() = %v, want a measurement since the first", err)
	}
}

func TestProcessesOff(t *testing.T) {
	c := New(Options{FirstSample: time.Millisecond})
	s, _ := c.Collect(context.Background(), "h", time.Now())
	if s.Processes != nil || s.ProcessCount == 0 {
		t.Errorf("without processes: list %d, count %d; want none and a count", len(s.Processes), s.ProcessCount)
	}
}

func TestCollectCancelled(t *testing.T) {
	c := New(Options{FirstSample: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := c.Collect(ctx, "h", time.Now()); s != nil || err == nil {
		t.Errorf("Collect(cancelled) = %v, %v; want no snapshot and an error", s, err)
	}
}
