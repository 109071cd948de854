package vigil_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-monitor/vigil"
)

func sampleStats() vigil.HostStats {
	return vigil.HostStats{
		Host:     "Linux-0123456789abcdef",
		At:       time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		Interval: vigil.Seconds(time.Minute),
		Hostname: "web1", OS: "linux",
		Uptime: 3600, BootTime: 1777633200,
		CPU:    vigil.CPUStats{Count: 4, Frequency: 2400, PercentUsed: 12.5},
		Load:   &vigil.LoadStats{Load1: 0.5, Load5: 0.25, Load15: 0.125},
		Memory: vigil.MemoryStats{Total: 8 << 30, Available: 6 << 30, Used: 2 << 30, Free: 5 << 30, PercentUsed: 25},
		Disks: []vigil.DiskStats{
			{Device: "/dev/sda1", FileSystem: "ext4", MountPoint: "/", Total: 100, Used: 91, Free: 9, PercentUsed: 91},
			{Device: "/dev/sdb1", FileSystem: "xfs", MountPoint: "/data", Total: 100, Used: 40, Free: 60, PercentUsed: 40},
		},
		Processes: []vigil.ProcessInfo{{PID: 1, Name: "init", Username: "root"}, {PID: 80, Name: "nginx", Username: "www-data"}, {PID: 81, Name: "nginx", Username: "www-data"}},
		Network: []vigil.NetworkStats{
			{Name: "lo", IP: "127.0.0.1", Netmask: "255.0.0.0", BytesSent: 10, BytesRecv: 10},
			{Name: "eth0", IP: "10.0.0.5", Netmask: "255.255.255.0", BytesSent: 1000, BytesRecv: 2000},
		},
		ProcessCount: 3,
	}
}

// The JSON keys of the sections are System Monitor's (compat.md §4).
func TestHostStatsJSONKeys(t *testing.T) {
	s := sampleStats()
	b, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"cpu":{"count":4,"frequency":2400,"percent_used":12.5}`,
		`"memory":{"total":8589934592,"available":6442450944,"used":2147483648,"free":5368709120,"percent_used":25}`,
		`{"device":"/dev/sda1","file_system":"ext4","mount_point":"/","total":100,"used":91,"free":9,"percent_used":91}`,
		`{"pid":80,"name":"nginx","username":"www-data"}`,
		`{"name":"eth0","ip":"10.0.0.5","netmask":"255.255.255.0","bytes_sent":1000,"bytes_recv":2000}`,
		`"load":{"load1":0.5,"load5":0.25,"load15":0.125}`,
		`"uptime":3600,"boot_time":1777633200`,
		`"interval":60`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json %s\nlacks %s", b, want)
		}
	}
	var back vigil.HostStats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestHostStatsValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*vigil.HostStats)
		field string
	}{
		{"ok", func(*vigil.HostStats) {}, ""},
		{"no host", func(s *vigil.HostStats) { s.Host = "" }, "host"},
		{"long host", func(s *vigil.HostStats) { s.Host = strings.Repeat("h", vigil.MaxNameLen+1) }, "host"},
		{"no time", func(s *vigil.HostStats) { s.At = time.Time{} }, "at"},
		{"negative interval", func(s *vigil.HostStats) { s.Interval = -1 }, "interval"},
		{"cpu over 100", func(s *vigil.HostStats) { s.CPU.PercentUsed = 100.5 }, "cpu.percent_used"},
		{"negative cpu count", func(s *vigil.HostStats) { s.CPU.Count = -1 }, "cpu.count"},
		{"memory percent", func(s *vigil.HostStats) { s.Memory.PercentUsed = -1 }, "memory.percent_used"},
		{"disk percent", func(s *vigil.HostStats) { s.Disks[1].PercentUsed = 101 }, "disks[1].percent_used"},
		{"disk mount utf8", func(s *vigil.HostStats) { s.Disks[0].MountPoint = "\xff" }, "disks[0].mount_point"},
		{"process name", func(s *vigil.HostStats) { s.Processes[2].Name = strings.Repeat("x", 2000) }, "processes[2].name"},
		{"netmask", func(s *vigil.HostStats) { s.Network[1].Netmask = "\xfe" }, "network[1].netmask"},
		{"negative load", func(s *vigil.HostStats) { s.Load.Load5 = -1 }, "load"},
		{"hostname", func(s *vigil.HostStats) { s.Hostname = "\xff" }, "hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampleStats()
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *vigil.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate() = %v, want a field error on %q", err, tt.field)
			}
		})
	}
}

func TestHostMetricValue(t *testing.T) {
	s := sampleStats()
	tests := []struct {
		metric string
		want   float64
		ok     bool
	}{
		{"cpu_percent", 12.5, true},
		{"memory_percent", 25, true},
		{"memory_available", 6 << 30, true},
		{"disk_percent", 91, true},
		{"disk_percent{mount=/data}", 40, true},
		{`disk_free_percent{mount="/"}`, 9, true},
		{"disk_free{mount=/data}", 60, true},
		{"disk_percent{mount=/nope}", 0, false},
		{"load5", 0.25, true},
		{"net_bytes_sent", 1010, true},
		{"net_bytes_recv{interface=eth0}", 2000, true},
		{"net_bytes_recv{interface=wlan0}", 0, false},
		{"process_count", 3, true},
		{"process_count{name=nginx}", 2, true},
		{"process_count{ name = sshd }", 0, true},
		{"uptime", 3600, true},
	}
	for _, tt := range tests {
		m, err := vigil.ParseHostMetric(tt.metric)
		if err != nil {
			t.Errorf("ParseHostMetric(%q) = %v", tt.metric, err)
			continue
		}
		got, ok := s.Value(m)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Value(%s) = %v, %v, want %v, %v", tt.metric, got, ok, tt.want, tt.ok)
		}
	}
	noLoad := sampleStats()
	noLoad.Load = nil
	if _, ok := noLoad.Value(vigil.HostMetric{Name: "load1"}); ok {
		t.Error("Value(load1) without a load average = ok, want false")
	}
}

func TestParseHostMetricErrors(t *testing.T) {
	for _, in := range []string{"", "cpu", "cpu_percent{mount=/}", "disk_percent{name=/}", "disk_percent{mount=/", "disk_percent{mount}", "disk_percent{mount=}"} {
		_, err := vigil.ParseHostMetric(in)
		var fe *vigil.FieldError
		if !errors.As(err, &fe) || fe.Field != "metric" {
			t.Errorf("ParseHostMetric(%q) = %v, want a field error on metric", in, err)
		}
	}
	m, err := vigil.ParseHostMetric("disk_percent{mount=/}")
	if err != nil || m.String() != "disk_percent{mount=/}" {
		t.Errorf("ParseHostMetric round trip = %v, %v", m, err)
	}
}

func TestHostSummary(t *testing.T) {
	s := sampleStats()
	got := s.Summary()
	want := vigil.HostSummary{
		Host: s.Host, Hostname: "web1", OS: "linux", LastSeen: s.At, Interval: s.Interval,
		CPUPercent: 12.5, MemoryPercent: 25, DiskPercent: 91, DiskMount: "/", Load1: 0.5, Uptime: 3600,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summary() (-want +got):\n%s", diff)
	}
}
