// Package collect reads a host's stats with gopsutil
// (github.com/shirou/gopsutil/v4) into a vigil.HostStats: System Monitor's
// cpu, memory, disks, processes and network sections plus load average,
// uptime and boot time. It is the only package of vigil that imports
// gopsutil.
package collect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	gnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/vigil-monitor/vigil"
)

// Options say what a Collector reads.
type Options struct {
	// Processes collects the full process list (pid, name, user); without
	// it only the count is reported. Walking every process is most of a
	// collection's cost.
	Processes bool
	// FirstSample is how long the first CPU measurement of a Collector
	// waits between its two readings of the CPU times (default 1 s, as
	// System Monitor sampled). Later collections measure the CPU use since
	// the previous one and do not wait.
	FirstSample time.Duration
	// Agent is the agent version reported in HostStats.Agent.
	Agent string
}

// Collector reads snapshots. It remembers the previous CPU times (so CPU
// percent covers the time between two collections), the machine's
// unchanging facts, and user names by uid. It is not safe for concurrent
// use.
type Collector struct {
	opts     Options
	prevCPU  *cpu.TimesStat
	static   *host.InfoStat
	users    map[uint32]string
	self     *process.Process
	numCPU   int
	lastUser time.Time
}

// New returns a Collector.
func New(opts Options) *Collector {
	if opts.FirstSample <= 0 {
		opts.FirstSample = time.Second
	}
	return &Collector{opts: opts, users: map[uint32]string{}}
}

// Collect reads one snapshot for host id at now. A section that cannot be
// read is left empty and its error joined into the returned error, so a
// snapshot is always returned; only ctx ending returns no snapshot.
func (c *Collector) Collect(ctx context.Context, id string, now time.Time) (*vigil.HostStats, error) {
	start := time.Now()
	s := &vigil.HostStats{Host: id, At: now.UTC(), Agent: c.opts.Agent, OS: runtime.GOOS}
	var errs []error
	note := func(section string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", section, err))
		}
	}
	var err error
	s.CPU, err = c.CPU(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	note("cpu", err)
	s.Memory, err = Memory(ctx)
	note("memory", err)
	s.Disks, err = Disks(ctx)
	note("disks", err)
	s.Network, err = Network(ctx)
	note("network", err)
	if c.opts.Processes {
		s.Processes, err = c.Processes(ctx)
		s.ProcessCount = len(s.Processes)
	} else {
		var pids []int32
		pids, err = process.PidsWithContext(ctx)
		s.ProcessCount = len(pids)
	}
	note("processes", err)
	if l, err := load.AvgWithContext(ctx); err == nil {
		s.Load = &vigil.LoadStats{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	}
	if bt, err := host.BootTimeWithContext(ctx); err == nil && bt > 0 {
		s.BootTime = int64(bt) //nolint:gosec // Unix seconds fit in int64
		if up := now.Unix() - s.BootTime; up > 0 {
			s.Uptime = uint64(up)
		}
	} else {
		note("boot time", err)
	}
	c.describe(ctx, s)
	if self := c.cost(ctx); self != nil {
		self.CollectSeconds = time.Since(start).Seconds()
		s.Self = self
	}
	return s, errors.Join(errs...)
}

// describe fills the machine's name and platform, read once.
func (c *Collector) describe(ctx context.Context, s *vigil.HostStats) {
	if c.static == nil {
		info, err := host.InfoWithContext(ctx)
		if err != nil || info == nil {
			info = &host.InfoStat{}
		}
		c.static = info
	}
	s.Hostname, _ = os.Hostname()
	if s.Hostname == "" {
		s.Hostname = c.static.Hostname
	}
	s.Platform, s.PlatformVersion = c.static.Platform, c.static.PlatformVersion
	if c.static.OS != "" {
		s.OS = c.static.OS
	}
}

// cost reads the agent's own resident memory and CPU time.
func (c *Collector) cost(ctx context.Context) *vigil.AgentCost {
	if c.self == nil {
		p, err := process.NewProcessWithContext(ctx, int32(os.Getpid())) //nolint:gosec // pids fit in int32
		if err != nil {
			return nil
		}
		c.self = p
	}
	a := &vigil.AgentCost{}
	if m, err := c.self.MemoryInfoWithContext(ctx); err == nil {
		a.RSS = m.RSS
	}
	if t, err := c.self.TimesWithContext(ctx); err == nil {
		a.CPUSeconds = round(t.User+t.System, 3)
	}
	return a
}

// CPU reads the cpu section: logical CPU count, frequency in MHz (the
// mean over CPUs of what the OS reports: on Linux cpufreq's maximum where
// present, else /proc/cpuinfo's "cpu MHz") and the percentage of CPU time
// busy since the previous call. The first call of a Collector measures over
// Options.FirstSample instead.
func (c *Collector) CPU(ctx context.Context) (vigil.CPUStats, error) {
	var st vigil.CPUStats
	if c.numCPU == 0 {
		n, err := cpu.CountsWithContext(ctx, true)
		if err != nil {
			return st, err
		}
		c.numCPU = n
	}
	st.Count = c.numCPU
	if infos, err := cpu.InfoWithContext(ctx); err == nil && len(infos) > 0 {
		var sum float64
		for _, in := range infos {
			sum += in.Mhz
		}
		st.Frequency = round(sum/float64(len(infos)), 1)
	}
	now, err := cpuTimes(ctx)
	if err != nil {
		return st, err
	}
	if c.prevCPU == nil {
		t := time.NewTimer(c.opts.FirstSample)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ctx.Err()
		case <-t.C:
		}
		c.prevCPU = now
		if now, err = cpuTimes(ctx); err != nil {
			return st, err
		}
	}
	st.PercentUsed = round(busyPercent(*c.prevCPU, *now), 2)
	c.prevCPU = now
	return st, nil
}

func cpuTimes(ctx context.Context) (*cpu.TimesStat, error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errors.New("no cpu times")
	}
	return &ts[0], nil
}

// busyPercent is the share of CPU time not idle between t1 and t2, 0–100,
// computed like gopsutil's cpu.Percent (guest time is already in user time
// on Linux).
func busyPercent(t1, t2 cpu.TimesStat) float64 {
	all := func(t cpu.TimesStat) (float64, float64) {
		// Guest time is already counted in user time on Linux.
		tot := t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
		if runtime.GOOS != "linux" {
			tot += t.Guest + t.GuestNice
		}
		return tot, tot - t.Idle - t.Iowait
	}
	a1, b1 := all(t1)
	a2, b2 := all(t2)
	switch {
	case b2 <= b1:
		return 0
	case a2 <= a1:
		return 100
	}
	return math.Min(100, math.Max(0, (b2-b1)/(a2-a1)*100))
}

// Memory reads the memory section: total, available, used and free bytes
// and the percentage used, as gopsutil's mem.VirtualMemory reports them.
func Memory(ctx context.Context) (vigil.MemoryStats, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return vigil.MemoryStats{}, err
	}
	return vigil.MemoryStats{
		Total: v.Total, Available: v.Available, Used: v.Used, Free: v.Free,
		PercentUsed: round(v.UsedPercent, 2),
	}, nil
}

// Disks reads the disks section: every mounted physical file system
// (gopsutil's disk.Partitions(false)) with its usage. A mount point whose
// usage cannot be read is skipped; a device mounted twice is listed at each
// mount point.
func Disks(ctx context.Context) ([]vigil.DiskStats, error) {
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil && len(parts) == 0 {
		return []vigil.DiskStats{}, err
	}
	out := make([]vigil.DiskStats, 0, len(parts))
	seen := map[string]bool{}
	for _, p := range parts {
		if seen[p.Mountpoint] {
			continue
		}
		seen[p.Mountpoint] = true
		u, err := disk.UsageWithContext(ctx, p.Mountpoint)
		if err != nil || u.Total == 0 {
			continue
		}
		out = append(out, vigil.DiskStats{
			Device: p.Device, FileSystem: p.Fstype, MountPoint: p.Mountpoint,
			Total: u.Total, Used: u.Used, Free: u.Free, PercentUsed: round(u.UsedPercent, 2),
		})
	}
	return out, nil
}

// Network reads the network section: each interface with its first IPv4
// address and netmask (empty without one) and its bytes sent and received
// since boot, sorted by name.
func Network(ctx context.Context) ([]vigil.NetworkStats, error) {
	ifs, err := gnet.InterfacesWithContext(ctx)
	if err != nil {
		return []vigil.NetworkStats{}, err
	}
	byName := map[string]*vigil.NetworkStats{}
	out := make([]vigil.NetworkStats, 0, len(ifs))
	for _, in := range ifs {
		n := vigil.NetworkStats{Name: in.Name}
		for _, a := range in.Addrs {
			ip, ipnet, err := net.ParseCIDR(a.Addr)
			if err != nil || ip.To4() == nil {
				continue
			}
			n.IP, n.Netmask = ip.To4().String(), net.IP(ipnet.Mask).String()
			break
		}
		out = append(out, n)
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	counters, err := gnet.IOCountersWithContext(ctx, true)
	if err != nil {
		return out, err
	}
	for _, ct := range counters {
		if n := byName[ct.Name]; n != nil {
			n.BytesSent, n.BytesRecv = ct.BytesSent, ct.BytesRecv
		}
	}
	slices.SortFunc(out, func(a, b vigil.NetworkStats) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Processes reads the processes section: pid, name and user name of every
// process, sorted by pid. A process that ended during the walk is left
// out; one whose name or user the OS hides is listed with an empty field.
// User names are looked up once per uid per minute.
func (c *Collector) Processes(ctx context.Context) ([]vigil.ProcessInfo, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return []vigil.ProcessInfo{}, err
	}
	if time.Since(c.lastUser) > time.Minute {
		clear(c.users)
		c.lastUser = time.Now()
	}
	out := make([]vigil.ProcessInfo, 0, len(pids))
	for _, pid := range pids {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		// A bare Process skips NewProcess's existence check and start-time
		// read: the name read below tells a vanished process anyway.
		p := &process.Process{Pid: pid}
		name, err := p.NameWithContext(ctx)
		if err != nil && errors.Is(err, os.ErrNotExist) {
			continue
		}
		out = append(out, vigil.ProcessInfo{PID: pid, Name: name, Username: c.username(ctx, p)})
	}
	slices.SortFunc(out, func(a, b vigil.ProcessInfo) int { return int(a.PID - b.PID) })
	return out, nil
}

// username returns the user name of p, from the uid cache where the OS has
// uids.
func (c *Collector) username(ctx context.Context, p *process.Process) string {
	uids, err := p.UidsWithContext(ctx)
	if err != nil || len(uids) == 0 {
		name, _ := p.UsernameWithContext(ctx)
		return name
	}
	uid := uids[0]
	if name, ok := c.users[uid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	c.users[uid] = name
	return name
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}
