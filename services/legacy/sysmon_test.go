package legacy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

// sendStats is a v0.4.3 send_stats body in the agent's key order, with
// float frequency, null usernames and netmasks, and n processes.
func sendStats(id string, epoch int64, n int) string {
	var procs []string
	for i := range n {
		name := fmt.Sprintf(`"proc-%d-with-a-longish-executable-name.exe"`, i)
		if i%7 == 0 {
			name = "null"
		}
		procs = append(procs, fmt.Sprintf(`{"pid": %d, "name": %s, "username": null}`, 1000+i, name))
	}
	return fmt.Sprintf(`{"action": "send_stats", "system_id": %q, "url": "http://127.0.0.1:5000", "interval": 60, "epoch": %d, `+
		`"stats": {"cpu": {"count": 8, "percent_used": 12.5, "frequency": 2918.4}, `+
		`"memory": {"total": 17000000000, "available": 9000000000, "used": 8000000000, "free": 9000000000, "percent_used": 47.1}, `+
		`"disks": {"C:\\": {"total": 500000000000, "used": 200000000000, "free": 300000000000, "file_system": "NTFS", "mount_point": "C:\\"}}, `+
		`"processes": [%s], `+
		`"network": {"Ethernet": {"ip": "10.0.0.7", "netmask": null, "bytes_sent": 123, "bytes_recv": 456}}}}`,
		id, epoch, strings.Join(procs, ", "))
}

var smHeaders = [][2]string{{"Content-Type", "application/json"}, {"User-Agent", "python-requests/2.32.3"}, {"Accept", "*/*"}}

func getHost(t *testing.T, st *stack, id string) (*vigil.HostStats, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	st.api.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), "GET", "/v1/hosts/"+id, nil))
	if rec.Code != http.StatusOK {
		return nil, rec.Code
	}
	var h vigil.HostStats
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	return &h, rec.Code
}

// Cases 32-37.
func TestSysMon(t *testing.T) {
	st := newStack(t)
	srv := httptest.NewServer(legacy.NewSysMon(legacy.SysMonConfig{}, st.be, bustest.Logger(t)))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/", "/sysmon"} { // case 37
		u := srv.URL + path
		id := "Windows-0123456789abcdef0123456789abcd" + strings.Trim(path, "/")
		if code, _, _ := do(t, "POST", u, smHeaders, `{"action": "check_url"}`); code != http.StatusAccepted {
			t.Errorf("check_url = %d", code)
		}
		for _, sid := range []string{id, ""} {
			if code, _, _ := do(t, "POST", u, smHeaders, fmt.Sprintf(`{"action": "check_system_id", "system_id": %q}`, sid)); code != http.StatusNoContent {
				t.Errorf("unknown check_system_id %q = %d", sid, code)
			}
		}
		epoch := time.Now().Unix()
		body := sendStats(id, epoch, 700)
		if len(body) < 50_000 {
			t.Fatalf("body is %d bytes", len(body))
		}
		if code, _, b := do(t, "POST", u, smHeaders, body); code != http.StatusOK || b != "" {
			t.Fatalf("send_stats = %d %q", code, b)
		}
		bustest.Eventually(t, func() error {
			if _, code := getHost(t, st, id); code != http.StatusOK {
				return fmt.Errorf("GET host = %d", code)
			}
			return nil
		})
		h, _ := getHost(t, st, id)
		if h.At.Unix() != epoch || h.CPU.Frequency != 2918.4 || len(h.Processes) != 700 || h.Processes[0].Name != "" ||
			h.Disks[0].Device != `C:\` || h.Network[0].IP != "10.0.0.7" || h.Memory.Total != 17000000000 {
			t.Errorf("stored = %+v", h)
		}
		if code, _, _ := do(t, "POST", u, smHeaders, fmt.Sprintf(`{"action": "check_system_id", "system_id": %q}`, id)); code != http.StatusOK {
			t.Errorf("known check_system_id = %d", code)
		}
		if code, _, _ := do(t, "POST", u, smHeaders, `{"action": "bogus"}`); code != http.StatusBadRequest {
			t.Errorf("bogus = %d", code)
		}
		// Case 36: the pre-0.4 body.
		old := id + "-old"
		pre := fmt.Sprintf(`{"system_id": %q, "url": "http://127.0.0.1:5000", "interval": 60, "windows_uuid": "Not Windows", "epoch": %d, `+
			`"stats": {"cpu_usage": 3.5, "memory_usage": 41.0, "disk_usage": {"total": 100, "used": 40, "free": 60}, "processes": [], "network_info": {}}}`, old, epoch)
		if code, _, _ := do(t, "POST", u, smHeaders, pre); code != http.StatusOK {
			t.Fatalf("pre-0.4 = %d", code)
		}
		bustest.Eventually(t, func() error {
			h, code := getHost(t, st, old)
			if code != http.StatusOK || h.CPU.PercentUsed != 3.5 || h.Disks[0].PercentUsed != 40 {
				return fmt.Errorf("GET old host = %d %+v", code, h)
			}
			return nil
		})
	}
}
