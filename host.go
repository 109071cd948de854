package vigil

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// HostStats is one snapshot of a host, as vigil-agent collects it every
// interval: the body of POST /v1/hosts/{id}/stats, the messages of stream
// VIGIL_HOST_STATS on HostStatsSubject(Host), and the values of KV bucket
// vigil_hosts (the latest per host).
//
// The sections and their units follow System Monitor's send_stats
// (CheeseCake87/SystemMonitor src/system_monitor.py, ../shared/compat.md
// §4): byte counts are bytes, percentages are 0–100, CPU frequency is MHz,
// network counters are cumulative since boot. Load, uptime and boot time are
// what node_exporter and Telegraf users expect beside them. Disks and
// network interfaces are lists (System Monitor keyed them by device and
// interface name, losing a device mounted twice).
type HostStats struct {
	// Host is the host's system id (vigil-agent generate-system-id), a valid
	// name (ValidateName). Ingest takes it from the URL.
	Host string `json:"host"`
	// At is when the snapshot was collected (the agent's clock).
	At time.Time `json:"at"`
	// Interval is the agent's collection interval.
	Interval Seconds `json:"interval,omitempty"`
	// Hostname, OS (linux, windows, darwin), Platform (debian, …) and
	// PlatformVersion describe the machine; Agent is the agent's version.
	Hostname        string `json:"hostname,omitempty"`
	OS              string `json:"os,omitempty"`
	Platform        string `json:"platform,omitempty"`
	PlatformVersion string `json:"platform_version,omitempty"`
	Agent           string `json:"agent,omitempty"`
	// Uptime is seconds since boot; BootTime is the boot instant in Unix
	// seconds.
	Uptime   uint64 `json:"uptime"`
	BootTime int64  `json:"boot_time"`

	CPU       CPUStats       `json:"cpu"`
	Load      *LoadStats     `json:"load,omitempty"`
	Memory    MemoryStats    `json:"memory"`
	Disks     []DiskStats    `json:"disks"`
	Processes []ProcessInfo  `json:"processes,omitempty"`
	Network   []NetworkStats `json:"network"`
	// ProcessCount is the number of processes, also when the list itself
	// was not collected.
	ProcessCount int `json:"process_count"`
	// Self is what the agent itself costs, so its overhead is visible
	// fleet-wide.
	Self *AgentCost `json:"self,omitempty"`
}

// CPUStats is the cpu section: Count logical CPUs, Frequency in MHz (as the
// OS reports it; 0 when unknown), PercentUsed 0–100 over the last interval.
type CPUStats struct {
	Count       int     `json:"count"`
	Frequency   float64 `json:"frequency"`
	PercentUsed float64 `json:"percent_used"`
}

// LoadStats is the 1, 5 and 15 minute load average (absent on Windows).
type LoadStats struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// MemoryStats is the memory section, in bytes; PercentUsed is 0–100.
type MemoryStats struct {
	Total       uint64  `json:"total"`
	Available   uint64  `json:"available"`
	Used        uint64  `json:"used"`
	Free        uint64  `json:"free"`
	PercentUsed float64 `json:"percent_used"`
}

// DiskStats is one mounted file system: its device ("/dev/sda1", `C:`),
// file system type, mount point, and total, used and free bytes;
// PercentUsed is used/(used+free)×100 like df.
type DiskStats struct {
	Device      string  `json:"device"`
	FileSystem  string  `json:"file_system"`
	MountPoint  string  `json:"mount_point"`
	Total       uint64  `json:"total"`
	Used        uint64  `json:"used"`
	Free        uint64  `json:"free"`
	PercentUsed float64 `json:"percent_used"`
}

// ProcessInfo is one process: its pid, name and user name (empty when the
// OS denied access, where System Monitor sent null).
type ProcessInfo struct {
	PID      int32  `json:"pid"`
	Name     string `json:"name"`
	Username string `json:"username"`
}

// NetworkStats is one network interface: its name, IPv4 address and
// netmask (dotted quad; empty without one), and bytes sent and received
// since boot.
type NetworkStats struct {
	Name      string `json:"name"`
	IP        string `json:"ip"`
	Netmask   string `json:"netmask"`
	BytesSent uint64 `json:"bytes_sent"`
	BytesRecv uint64 `json:"bytes_recv"`
}

// AgentCost is the agent's own footprint: resident memory in bytes, CPU
// time used since it started in seconds, and how long this snapshot took to
// collect in seconds.
type AgentCost struct {
	RSS            uint64  `json:"rss"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CollectSeconds float64 `json:"collect_seconds"`
}

// Limits on host stats, beyond the body size limit of the transport.
const (
	MaxHostDisks      = 1024
	MaxHostInterfaces = 1024
	MaxHostProcesses  = 100000
	maxHostText       = 1024
)

// Validate checks a snapshot: Host is a valid name (field "host"), At is
// set ("at"), counts and percentages are in range, lists within their
// limits and strings valid UTF-8 of at most 1 KiB. It returns the first
// failure as a *FieldError naming the JSON path ("disks[2].mount_point").
func (s *HostStats) Validate() error {
	if err := ValidateName(s.Host); err != nil {
		return PrefixField("host", withoutField(err))
	}
	if s.At.IsZero() {
		return Invalid("at", "is required (RFC 3339 time of collection)")
	}
	if s.Interval < 0 {
		return Invalid("interval", "must be >= 0 seconds")
	}
	if err := checkTexts("", "hostname", s.Hostname, "os", s.OS, "platform", s.Platform, "platform_version", s.PlatformVersion, "agent", s.Agent); err != nil {
		return err
	}
	if s.CPU.Count < 0 {
		return Invalid("cpu.count", "must be >= 0")
	}
	if !finite(s.CPU.Frequency) || s.CPU.Frequency < 0 {
		return Invalid("cpu.frequency", "must be a number of MHz >= 0")
	}
	if err := checkPercent("cpu.percent_used", s.CPU.PercentUsed); err != nil {
		return err
	}
	if l := s.Load; l != nil && (!finite(l.Load1) || !finite(l.Load5) || !finite(l.Load15) || l.Load1 < 0 || l.Load5 < 0 || l.Load15 < 0) {
		return Invalid("load", "load averages must be numbers >= 0")
	}
	if err := checkPercent("memory.percent_used", s.Memory.PercentUsed); err != nil {
		return err
	}
	if len(s.Disks) > MaxHostDisks {
		return Invalid("disks", "has %d entries, the limit is %d", len(s.Disks), MaxHostDisks)
	}
	for i, d := range s.Disks {
		p := "disks[" + strconv.Itoa(i) + "]."
		if err := checkTexts(p, "device", d.Device, "file_system", d.FileSystem, "mount_point", d.MountPoint); err != nil {
			return err
		}
		if err := checkPercent(p+"percent_used", d.PercentUsed); err != nil {
			return err
		}
	}
	if len(s.Processes) > MaxHostProcesses {
		return Invalid("processes", "has %d entries, the limit is %d", len(s.Processes), MaxHostProcesses)
	}
	for i, pr := range s.Processes {
		p := "processes[" + strconv.Itoa(i) + "]."
		if err := checkTexts(p, "name", pr.Name, "username", pr.Username); err != nil {
			return err
		}
	}
	if s.ProcessCount < 0 {
		return Invalid("process_count", "must be >= 0")
	}
	if len(s.Network) > MaxHostInterfaces {
		return Invalid("network", "has %d entries, the limit is %d", len(s.Network), MaxHostInterfaces)
	}
	for i, n := range s.Network {
		p := "network[" + strconv.Itoa(i) + "]."
		if err := checkTexts(p, "name", n.Name, "ip", n.IP, "netmask", n.Netmask); err != nil {
			return err
		}
	}
	return nil
}

// Disk returns the disk mounted at mount, or nil.
func (s *HostStats) Disk(mount string) *DiskStats {
	for i := range s.Disks {
		if s.Disks[i].MountPoint == mount {
			return &s.Disks[i]
		}
	}
	return nil
}

// HostSummary is the short form of a host's latest stats that GET /v1/hosts
// lists: id, when it was last seen (the snapshot's At), and CPU, memory and
// fullest-disk percentages (0–100).
type HostSummary struct {
	Host          string    `json:"host"`
	Hostname      string    `json:"hostname,omitempty"`
	OS            string    `json:"os,omitempty"`
	LastSeen      time.Time `json:"last_seen"`
	Interval      Seconds   `json:"interval,omitempty"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryPercent float64   `json:"memory_percent"`
	// DiskPercent is the highest PercentUsed of any disk, DiskMount its
	// mount point.
	DiskPercent float64 `json:"disk_percent"`
	DiskMount   string  `json:"disk_mount,omitempty"`
	Load1       float64 `json:"load1,omitempty"`
	Uptime      uint64  `json:"uptime"`
}

// Summary returns the HostSummary of s.
func (s *HostStats) Summary() HostSummary {
	h := HostSummary{
		Host: s.Host, Hostname: s.Hostname, OS: s.OS, LastSeen: s.At, Interval: s.Interval,
		CPUPercent: s.CPU.PercentUsed, MemoryPercent: s.Memory.PercentUsed, Uptime: s.Uptime,
	}
	for _, d := range s.Disks {
		if d.PercentUsed >= h.DiskPercent {
			h.DiskPercent, h.DiskMount = d.PercentUsed, d.MountPoint
		}
	}
	if s.Load != nil {
		h.Load1 = s.Load.Load1
	}
	return h
}

// HostMetric names one number in a HostStats: a metric name and an
// optional label that picks a disk, interface or process name, written
// like "disk_percent{mount=/}". ParseHostMetric reads it, Value evaluates
// it. The metrics (units in brackets):
//
//	cpu_percent, memory_percent          [0–100]
//	cpu_frequency                        [MHz]
//	memory_used, memory_available        [bytes]
//	disk_percent{mount=M}                [0–100 used]
//	disk_free_percent{mount=M}           [0–100 free]
//	disk_used{mount=M}, disk_free{mount=M} [bytes]
//	                                     without a label, of the fullest disk
//	load1, load5, load15                 [load average]
//	net_bytes_sent{interface=I}, net_bytes_recv{interface=I}
//	                                     [bytes since boot]; without a label the sum
//	process_count                        [processes]
//	process_count{name=N}                [processes named N; 0 means not running]
//	uptime                               [seconds]
type HostMetric struct {
	Name  string
	Label string // "mount", "interface" or "name"; empty for none
	Value string
}

// hostMetricLabels maps each metric to the label it may carry ("" none).
var hostMetricLabels = map[string]string{
	"cpu_percent": "", "cpu_frequency": "", "memory_percent": "", "memory_used": "", "memory_available": "",
	"disk_percent": "mount", "disk_free_percent": "mount", "disk_used": "mount", "disk_free": "mount",
	"load1": "", "load5": "", "load15": "",
	"net_bytes_sent": "interface", "net_bytes_recv": "interface",
	"process_count": "name", "uptime": "",
}

// HostMetricNames returns the metric names ParseHostMetric knows, for help
// texts and error messages.
func HostMetricNames() string {
	return "cpu_percent, cpu_frequency, memory_percent, memory_used, memory_available, " +
		"disk_percent, disk_free_percent, disk_used, disk_free, load1, load5, load15, " +
		"net_bytes_sent, net_bytes_recv, process_count, uptime"
}

// ParseHostMetric reads "name" or "name{label=value}" (the value may be
// quoted). It returns a *FieldError for field "metric" when the name is
// unknown or the label is not the one the metric takes.
func ParseHostMetric(s string) (HostMetric, error) {
	s = strings.TrimSpace(s)
	name, rest, hasLabel := strings.Cut(s, "{")
	m := HostMetric{Name: strings.TrimSpace(name)}
	label, ok := hostMetricLabels[m.Name]
	if !ok {
		return HostMetric{}, Invalid("metric", "unknown metric %q (%s)", m.Name, HostMetricNames())
	}
	if !hasLabel {
		return m, nil
	}
	body, ok := strings.CutSuffix(rest, "}")
	k, v, eq := strings.Cut(body, "=")
	if !ok || !eq {
		return HostMetric{}, Invalid("metric", "%q: want name{label=value}", s)
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if uq, err := strconv.Unquote(v); err == nil {
		v = uq
	}
	if label == "" || k != label {
		if label == "" {
			return HostMetric{}, Invalid("metric", "%s takes no label", m.Name)
		}
		return HostMetric{}, Invalid("metric", "%s takes the label %q, not %q", m.Name, label, k)
	}
	if v == "" || len(v) > maxHostText || !utf8.ValidString(v) {
		return HostMetric{}, Invalid("metric", "the %s label needs a value", label)
	}
	m.Label, m.Value = k, v
	return m, nil
}

// String writes m back in the form ParseHostMetric reads.
func (m HostMetric) String() string {
	if m.Label == "" {
		return m.Name
	}
	return m.Name + "{" + m.Label + "=" + m.Value + "}"
}

// Value returns metric m of s, and false when s has no such value (no
// disk at that mount, no load average on Windows).
func (s *HostStats) Value(m HostMetric) (float64, bool) {
	switch m.Name {
	case "cpu_percent":
		return s.CPU.PercentUsed, true
	case "cpu_frequency":
		return s.CPU.Frequency, true
	case "memory_percent":
		return s.Memory.PercentUsed, true
	case "memory_used":
		return float64(s.Memory.Used), true
	case "memory_available":
		return float64(s.Memory.Available), true
	case "disk_percent", "disk_free_percent", "disk_used", "disk_free":
		return s.diskValue(m)
	case "load1", "load5", "load15":
		switch {
		case s.Load == nil:
			return 0, false
		case m.Name == "load1":
			return s.Load.Load1, true
		case m.Name == "load5":
			return s.Load.Load5, true
		}
		return s.Load.Load15, true
	case "net_bytes_sent", "net_bytes_recv":
		var sum float64
		found := false
		for _, n := range s.Network {
			if m.Value != "" && n.Name != m.Value {
				continue
			}
			found = true
			if m.Name == "net_bytes_sent" {
				sum += float64(n.BytesSent)
			} else {
				sum += float64(n.BytesRecv)
			}
		}
		return sum, found
	case "process_count":
		if m.Value == "" {
			return float64(s.ProcessCount), true
		}
		if s.Processes == nil {
			return 0, false
		}
		n := 0
		for _, p := range s.Processes {
			if p.Name == m.Value {
				n++
			}
		}
		return float64(n), true
	case "uptime":
		return float64(s.Uptime), true
	}
	return 0, false
}

func (s *HostStats) diskValue(m HostMetric) (float64, bool) {
	pick := func(d *DiskStats) float64 {
		switch m.Name {
		case "disk_percent":
			return d.PercentUsed
		case "disk_free_percent":
			return 100 - d.PercentUsed
		case "disk_used":
			return float64(d.Used)
		}
		return float64(d.Free)
	}
	if m.Value != "" {
		d := s.Disk(m.Value)
		if d == nil {
			return 0, false
		}
		return pick(d), true
	}
	// Without a label: the fullest disk, which is the worst case for every
	// disk metric except the free ones, where it is the least free.
	var worst *DiskStats
	for i := range s.Disks {
		if worst == nil || s.Disks[i].PercentUsed > worst.PercentUsed {
			worst = &s.Disks[i]
		}
	}
	if worst == nil {
		return 0, false
	}
	return pick(worst), true
}

// checkTexts checks (field, value) pairs in order; prefix is put before
// each field name.
func checkTexts(prefix string, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v := pairs[i+1]; len(v) > maxHostText || !utf8.ValidString(v) {
			return Invalid(prefix+pairs[i], "must be valid UTF-8 of at most %d bytes", maxHostText)
		}
	}
	return nil
}

func checkPercent(field string, v float64) error {
	if !finite(v) || v < 0 || v > 100 {
		return Invalid(field, "must be a percentage between 0 and 100, got %v", v)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// withoutField drops the field of a *FieldError so it can be renamed with
// PrefixField.
func withoutField(err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Msg: fe.Msg}
	}
	return err
}
