package legacy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/legacy"
)

// The §0 dispatch of one listener serving every surface on "/".
func TestCombined(t *testing.T) {
	st := newStack(t)
	log := bustest.Logger(t)
	wtr, err := legacy.NewWatchTower(legacy.WatchTowerConfig{Password: wtPassword}, st.be, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	off := 0.0
	tr, err := legacy.NewTraylert(legacy.TraylertConfig{Key: traylertKey, LowDisk: &off}, st.be, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&legacy.Combined{WatchTower: wtr, Traylert: tr, SysMon: legacy.NewSysMon(legacy.SysMonConfig{}, st.be, log)})
	t.Cleanup(srv.Close)
	u := srv.URL
	if m := wt(t, "GET", u+"/", pw, ""); result(m) != 200 || m["heartBeats"] == nil {
		t.Errorf("GET / with password = %v", m)
	}
	if _, doc, _ := poll(t, u, traylertKey); doc == nil {
		t.Error("GET / without password is not Traylert's envelope")
	}
	if code, _, _ := do(t, "POST", u+"/", smHeaders, `{"action": "check_url"}`); code != http.StatusAccepted {
		t.Errorf("check_url = %d", code)
	}
	if m := wt(t, "POST", u+"/", jsonCT, pulseBody("svc", 60)); result(m) != 200 || m["action"] != "pulse" {
		t.Errorf("POST / pulse = %v", m)
	}
	if m := wt(t, "DELETE", u+"/", jsonCT, `{"service":"svc"}`); m["action"] != "cancel" {
		t.Errorf("DELETE / = %v", m)
	}
	if code, _, _ := do(t, "POST", u+"/alert", formHeaders, "alert=x"); code != http.StatusOK {
		t.Errorf("POST /alert = %d", code)
	}
	if m := wt(t, "GET", u+"/hello", pw, ""); result(m) != 200 {
		t.Errorf("hello = %v", m)
	}
}
