package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/vigil-monitor/vigil"
)

// SysMonConfig configures the System Monitor surface
// (CheeseCake87/SystemMonitor, compat.md §4).
type SysMonConfig struct {
	// MaxBody bounds request bodies, in bytes (default 8 MiB: a v0.4.3
	// send_stats with every process is tens of KB to a few MB).
	MaxBody int64 `yaml:"max_body"`
}

// SysMon answers System Monitor agents on any path: check_url → 202,
// check_system_id → 200 known / 204 unknown, send_stats (and the pre-0.4
// body without "action") → 200 once stored as host stats, anything else →
// 400. Bodies are empty, as the reference server's.
type SysMon struct {
	cfg SysMonConfig
	be  *Backend
	log *slog.Logger
}

// NewSysMon returns the System Monitor surface.
func NewSysMon(cfg SysMonConfig, be *Backend, log *slog.Logger) *SysMon {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 8 << 20
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SysMon{cfg: cfg, be: be, log: log.With("component", "legacy-sysmon")}
}

// smBody is the union of the v0.4 and pre-0.4 agent bodies.
type smBody struct {
	Action      *string  `json:"action"`
	SystemID    *string  `json:"system_id"`
	Interval    float64  `json:"interval"`
	Epoch       float64  `json:"epoch"`
	WindowsUUID *string  `json:"windows_uuid"`
	Stats       *smStats `json:"stats"`
}

type smStats struct {
	CPU *struct {
		Count       int     `json:"count"`
		PercentUsed float64 `json:"percent_used"`
		Frequency   float64 `json:"frequency"`
	} `json:"cpu"`
	Memory *struct {
		Total       uint64  `json:"total"`
		Available   uint64  `json:"available"`
		Used        uint64  `json:"used"`
		Free        uint64  `json:"free"`
		PercentUsed float64 `json:"percent_used"`
	} `json:"memory"`
	Disks map[string]struct {
		Total      uint64 `json:"total"`
		Used       uint64 `json:"used"`
		Free       uint64 `json:"free"`
		FileSystem string `json:"file_system"`
		MountPoint string `json:"mount_point"`
	} `json:"disks"`
	Processes []struct {
		PID      int32   `json:"pid"`
		Name     *string `json:"name"`
		Username *string `json:"username"`
	} `json:"processes"`
	Network     map[string]smIface `json:"network"`
	NetworkInfo map[string]smIface `json:"network_info"`
	// pre-0.4
	CPUUsage    *float64 `json:"cpu_usage"`
	MemoryUsage *float64 `json:"memory_usage"`
	DiskUsage   *struct {
		Total uint64 `json:"total"`
		Used  uint64 `json:"used"`
		Free  uint64 `json:"free"`
	} `json:"disk_usage"`
}

type smIface struct {
	IP        *string `json:"ip"`
	Netmask   *string `json:"netmask"`
	BytesSent uint64  `json:"bytes_sent"`
	BytesRecv uint64  `json:"bytes_recv"`
}

// IsSysMon reports whether a POST body is System Monitor's: a JSON object
// with an "action" or "stats" key (the combined listener's rule).
func IsSysMon(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, a := m["action"]
	_, s := m["stats"]
	return a || s
}

func (s *SysMon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	w.WriteHeader(s.handle(r, body))
}

// handle returns the status of one agent request.
func (s *SysMon) handle(r *http.Request, body []byte) int {
	var b smBody
	if err := json.Unmarshal(body, &b); err != nil {
		return http.StatusBadRequest
	}
	action := ""
	if b.Action != nil {
		action = *b.Action
	} else if b.Stats != nil && b.Stats.CPUUsage != nil {
		action = "send_stats" // pre-0.4 body (fixed: accepted as stats)
	}
	switch action {
	case "check_url":
		return http.StatusAccepted
	case "check_system_id":
		if b.SystemID == nil || *b.SystemID == "" {
			return http.StatusNoContent
		}
		var h vigil.HostStats
		err := s.be.get(r.Context(), "/v1/hosts/"+url.PathEscape(*b.SystemID), nil, &h)
		switch {
		case err == nil:
			return http.StatusOK
		case errors.Is(err, errNotFound):
			return http.StatusNoContent
		}
		s.log.Warn("check_system_id", "err", err)
		return http.StatusServiceUnavailable
	case "send_stats":
		hs, err := b.hostStats()
		if err != nil {
			return http.StatusBadRequest
		}
		if _, err := s.be.Intake.StoreHostStats(r.Context(), hs); err != nil {
			if errors.Is(err, vigil.ErrUnavailable) {
				return http.StatusServiceUnavailable
			}
			s.log.Info("send_stats rejected", "system_id", hs.Host, "err", err)
			return http.StatusBadRequest
		}
		return http.StatusOK
	}
	return http.StatusBadRequest
}

var errMissing = errors.New("system_id and stats are required")

// hostStats maps an agent body onto vigil.HostStats: system_id is the host,
// epoch the collection time; units are already bytes, MHz and percent.
func (b *smBody) hostStats() (*vigil.HostStats, error) {
	if b.SystemID == nil || b.Stats == nil {
		return nil, errMissing
	}
	st := b.Stats
	hs := &vigil.HostStats{
		Host: *b.SystemID, At: time.Unix(int64(b.Epoch), 0).UTC(), Agent: "system-monitor",
		Interval: vigil.Seconds(time.Duration(b.Interval * float64(time.Second))),
		Disks:    []vigil.DiskStats{}, Network: []vigil.NetworkStats{},
	}
	if b.Epoch == 0 {
		hs.At = time.Now().UTC()
	}
	if st.CPU != nil {
		hs.CPU = vigil.CPUStats{Count: st.CPU.Count, Frequency: st.CPU.Frequency, PercentUsed: st.CPU.PercentUsed}
	}
	if st.CPUUsage != nil {
		hs.CPU.PercentUsed = *st.CPUUsage
	}
	if m := st.Memory; m != nil {
		hs.Memory = vigil.MemoryStats{Total: m.Total, Available: m.Available, Used: m.Used, Free: m.Free, PercentUsed: m.PercentUsed}
	}
	if st.MemoryUsage != nil {
		hs.Memory.PercentUsed = *st.MemoryUsage
	}
	for dev, d := range st.Disks {
		hs.Disks = append(hs.Disks, vigil.DiskStats{
			Device: dev, FileSystem: d.FileSystem, MountPoint: d.MountPoint,
			Total: d.Total, Used: d.Used, Free: d.Free, PercentUsed: percent(d.Used, d.Free),
		})
	}
	sort.Slice(hs.Disks, func(i, j int) bool { return hs.Disks[i].Device < hs.Disks[j].Device })
	if d := st.DiskUsage; d != nil {
		hs.Disks = append(hs.Disks, vigil.DiskStats{MountPoint: "/", Total: d.Total, Used: d.Used, Free: d.Free, PercentUsed: percent(d.Used, d.Free)})
	}
	for _, p := range st.Processes {
		hs.Processes = append(hs.Processes, vigil.ProcessInfo{PID: p.PID, Name: deref(p.Name), Username: deref(p.Username)})
	}
	hs.ProcessCount = len(st.Processes)
	nets := st.Network
	if nets == nil {
		nets = st.NetworkInfo
	}
	for name, n := range nets {
		hs.Network = append(hs.Network, vigil.NetworkStats{Name: name, IP: deref(n.IP), Netmask: deref(n.Netmask), BytesSent: n.BytesSent, BytesRecv: n.BytesRecv})
	}
	sort.Slice(hs.Network, func(i, j int) bool { return hs.Network[i].Name < hs.Network[j].Name })
	return hs, nil
}

func percent(used, free uint64) float64 {
	if used+free == 0 {
		return 0
	}
	return float64(used) / float64(used+free) * 100
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// readBody reads at most limit bytes of r's body and puts them back, so a
// dispatcher can look at a body before handing the request on.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("body over the limit")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
