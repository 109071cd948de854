package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
)

func TestOwnerFirstThenRoutesElseDefault(t *testing.T) {
	rec := newRecorder("rec")
	cfg := testConfig(rec)
	cfg.Routes = []notifier.Route{
		{Name: "db", Match: notifier.Match{Service: "db-.*", Level: "error"}, Receivers: []vigil.Owner{{Type: "rec", Target: "dba"}}},
		{Name: "all-critical", Match: notifier.Match{Level: "critical"}, Receivers: []vigil.Owner{{Type: "rec", Target: "oncall"}}},
	}
	cfg.Default = notifier.DefaultRoute{Receivers: []vigil.Owner{{Type: "rec", Target: "ops"}}}
	h := start(t, cfg, 1)

	db := downAlert("db-main", 1)
	db.Owner = &vigil.Owner{Type: "rec", Target: "alice"}
	h.alert(db)
	web := downAlert("web", 2) // no route matches: default
	h.alert(web)
	notDB := downAlert("xdb-main", 3) // anchored: "db-.*" does not match
	h.alert(notDB)
	info := vigil.Alert{ID: "manual:x", Kind: vigil.AlertManual, Service: "db-2", Title: "fyi", Level: vigil.LevelInfo}
	h.alert(info) // below the db route's level: default

	h.waitAttempts(db.ID, notifier.OutcomeDelivered, 2)
	h.waitAttempts(web.ID, notifier.OutcomeDelivered, 1)
	h.waitAttempts(notDB.ID, notifier.OutcomeDelivered, 1)
	h.waitAttempts(info.ID, notifier.OutcomeDelivered, 1)
	h.settled()
	for target, want := range map[string][]string{
		"alice": {"db-main is down"},
		"dba":   {"db-main is down"},
		"ops":   {"fyi", "web is down", "xdb-main is down"},
	} {
		var got []string
		for _, m := range rec.to(target) {
			got = append(got, m.Title)
		}
		sort.Strings(got)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s got %q, want %q", target, got, want)
		}
	}
	if n := len(rec.to("oncall")); n != 0 {
		t.Errorf("oncall got %d messages, want 0", n)
	}
	// The owner's attempt names its route.
	var routes []string
	for _, a := range h.deliveries(url.Values{"alert": {db.ID}}) {
		routes = append(routes, a.Route+":"+a.Target)
	}
	if got := strings.Join(routes, ","); got != "db:dba,owner:alice" && got != "owner:alice,db:dba" {
		t.Errorf("routes of %s = %s", db.ID, got)
	}
}

func TestRedeliveredAlertFansOutToTheSameJobs(t *testing.T) {
	rec := newRecorder("rec")
	h := start(t, testConfig(rec), 1)
	a := downAlert("svc", 7)
	a.Owner = &vigil.Owner{Type: "rec", Target: "bob"}
	// Stored three times (as a watchdog that re-decided without a message
	// id would): three fan-outs, one job.
	for range 3 {
		h.publishAlert(a, "")
	}
	h.waitAttempts(a.ID, notifier.OutcomeDelivered, 1)
	bustest.Eventually(t, func() error {
		c, err := h.assets.JS.Consumer(context.Background(), vigil.StreamAlerts, notifier.Consumer)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < 3 {
			return fmt.Errorf("ack floor %d, want 3", info.AckFloor.Stream)
		}
		return nil
	})
	h.settled()
	if n := len(rec.to("bob")); n != 1 {
		t.Errorf("bob got %d messages, want 1", n)
	}
}

func TestTwoReplicasDeliverEachJobOnce(t *testing.T) {
	rec := newRecorder("rec")
	cfg := testConfig(rec)
	cfg.Default = notifier.DefaultRoute{Receivers: []vigil.Owner{{Type: "rec", Target: "ops"}, {Type: "rec", Target: "dev"}}}
	h := start(t, cfg, 2)
	const n = 60
	for i := range n {
		h.alert(downAlert(fmt.Sprintf("svc-%d", i), uint64(i+1)))
	}
	bustest.Eventually(t, func() error {
		if c := rec.count(); c < 2*n {
			return fmt.Errorf("%d sent, want %d", c, 2*n)
		}
		return nil
	})
	h.settled()
	seen := map[string]int{}
	rec.mu.Lock()
	for _, s := range rec.sent {
		seen[s.target+"/"+s.msg.ID]++
	}
	rec.mu.Unlock()
	if len(seen) != 2*n {
		t.Errorf("%d distinct deliveries, want %d", len(seen), 2*n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", k, c)
		}
	}
}

func TestTransientFailuresAreRetriedWithBackOff(t *testing.T) {
	rec := newRecorder("rec")
	rec.fail = func(_ string, try int) error {
		if try <= 2 {
			return fmt.Errorf("connection refused: %w", errBoom)
		}
		return nil
	}
	h := start(t, testConfig(rec), 1)
	a := downAlert("flaky", 1)
	a.Owner = &vigil.Owner{Type: "rec", Target: "carol"}
	h.alert(a)
	h.waitAttempts(a.ID, notifier.OutcomeDelivered, 1)
	h.settled()
	all := h.deliveries(url.Values{"alert": {a.ID}})
	var got []string
	for i := len(all) - 1; i >= 0; i-- { // oldest first
		got = append(got, fmt.Sprintf("%s#%d", all[i].Status, all[i].Attempt))
		if all[i].Status == notifier.OutcomeRetrying && (all[i].NextRetry.IsZero() || all[i].Error == "") {
			t.Errorf("retrying attempt without next_retry or error: %+v", all[i])
		}
	}
	if want := "retrying#1,retrying#2,delivered#3"; strings.Join(got, ",") != want {
		t.Errorf("history = %s, want %s", strings.Join(got, ","), want)
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vigil_notifier_deliveries_total", map[string]string{"channel": "rec", "outcome": "retrying"}, 2},
		{"vigil_notifier_deliveries_total", map[string]string{"channel": "rec", "outcome": "delivered"}, 1},
		{"vigil_notifier_jobs_total", map[string]string{"channel": "rec"}, 1},
		{"vigil_notifier_delivery_seconds", map[string]string{"channel": "rec"}, 1},
		{"vigil_notifier_alerts_total", map[string]string{"kind": "down"}, 1},
	} {
		if got := h.metric(m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
	if n := len(rec.to("carol")); n != 1 {
		t.Errorf("carol got %d messages, want 1", n)
	}
}

type deadPage struct {
	Items []notifier.DeadLetter `json:"items"`
}

func TestPermanentFailureIsDeadLetteredAndRetriedFromTheAPI(t *testing.T) {
	rec := newRecorder("rec")
	rec.fail = func(string, int) error { return channel.Permanent(fmt.Errorf("550 no such user: %w", errBoom)) }
	h := start(t, testConfig(rec), 1)
	a := downAlert("svc", 1)
	a.Owner = &vigil.Owner{Type: "rec", Target: "dave"}
	h.alert(a)
	dead := h.waitAttempts(a.ID, notifier.OutcomeDead, 1)
	if dead[0].Attempt != 1 || !strings.Contains(dead[0].Error, "550") {
		t.Errorf("dead attempt = %+v", dead[0])
	}
	h.settled() // Term removed the job from the work queue
	var p deadPage
	if code := h.do(http.MethodGet, "/v1/deadletters", "", &p); code != http.StatusOK || len(p.Items) != 1 {
		t.Fatalf("GET /v1/deadletters = %d, %d items", code, len(p.Items))
	}
	d := p.Items[0]
	if d.Job.Alert.ID != a.ID || !strings.Contains(d.Error, "550") || d.Seq == 0 {
		t.Errorf("dead letter = %+v", d)
	}

	rec.setFail(nil)
	path := fmt.Sprintf("/v1/deadletters/%d/retry", d.Seq)
	if code := h.do(http.MethodPost, path, "", nil); code != http.StatusAccepted {
		t.Fatalf("POST %s = %d", path, code)
	}
	h.waitAttempts(a.ID, notifier.OutcomeDelivered, 1)
	if code := h.do(http.MethodPost, path, "", nil); code != http.StatusNotFound {
		t.Errorf("second POST %s = %d, want 404", path, code)
	}
	if got := h.metric("vigil_notifier_dead_letters_total", map[string]string{"channel": "rec"}); got != 1 {
		t.Errorf("vigil_notifier_dead_letters_total = %v, want 1", got)
	}
	if code := h.do(http.MethodPost, "/v1/deadletters/x/retry", "", nil); code != http.StatusBadRequest {
		t.Errorf("POST /v1/deadletters/x/retry = %d, want 400", code)
	}
	p = deadPage{}
	h.do(http.MethodGet, "/v1/deadletters", "", &p)
	if len(p.Items) != 0 {
		t.Errorf("%d dead letters after the retry, want 0", len(p.Items))
	}
	if n := len(rec.to("dave")); n != 1 {
		t.Errorf("dave got %d messages, want 1", n)
	}
}

func TestLastAttemptIsDeadLettered(t *testing.T) {
	rec := newRecorder("rec")
	rec.fail = func(string, int) error { return errBoom }
	cfg := testConfig(rec)
	want := cfg.Retry.Attempts()
	h := start(t, cfg, 1)
	a := downAlert("svc", 1)
	a.Owner = &vigil.Owner{Type: "rec", Target: "erin"}
	h.alert(a)
	dead := h.waitAttempts(a.ID, notifier.OutcomeDead, 1)
	if dead[0].Attempt != want {
		t.Errorf("dead at attempt %d, want %d", dead[0].Attempt, want)
	}
	if got := h.deliveries(url.Values{"alert": {a.ID}, "status": {"retrying"}}); len(got) != want-1 {
		t.Errorf("%d retrying attempts, want %d", len(got), want-1)
	}
	h.settled()
}

func TestOwnerChannelNotConfiguredIsDeadLettered(t *testing.T) {
	h := start(t, testConfig(), 1)
	a := downAlert("svc", 1)
	a.Owner = &vigil.Owner{Type: vigil.ChannelPushover, Target: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"}
	h.alert(a)
	got := h.waitAttempts(a.ID, notifier.OutcomeDead, 1)
	if !strings.Contains(got[0].Error, "not configured") {
		t.Errorf("error = %q", got[0].Error)
	}
	if got[0].Target != "uQiR…VRsG" {
		t.Errorf("target = %q, want the key redacted", got[0].Target)
	}
}

func TestToastChannelPublishesOnTheDesktopSubject(t *testing.T) {
	h := start(t, testConfig(), 1)
	a := downAlert("backup", 3)
	a.Owner = &vigil.Owner{Type: vigil.ChannelToast, Target: "desk-1"}
	h.alert(a)
	h.waitAttempts(a.ID, notifier.OutcomeDelivered, 1)
	s, err := h.assets.JS.Stream(context.Background(), vigil.StreamToasts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), vigil.ToastSubject("desk-1"))
	if err != nil {
		t.Fatalf("toast not stored: %v", err)
	}
	var got vigil.Toast
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Title != "backup is down" || got.Service != "backup" || got.Level != vigil.LevelError || got.ID == "" {
		t.Errorf("toast = %+v", got)
	}
	if id := m.Header.Get(jetstream.MsgIDHeader); id != got.ID {
		t.Errorf("Nats-Msg-Id = %q, want the toast id %q", id, got.ID)
	}
}

func TestSilences(t *testing.T) {
	rec := newRecorder("rec")
	h := start(t, testConfig(rec), 1)
	for _, tc := range []struct{ body, field string }{
		{`{"matchers":[],"ends_at":"2999-01-01T00:00:00Z","created_by":"me","comment":"x"}`, "matchers"},
		{`{"matchers":[{"name":"nope","value":"x"}],"ends_at":"2999-01-01T00:00:00Z","created_by":"me","comment":"x"}`, "matchers[0].name"},
		{`{"matchers":[{"name":"service","value":"(","is_regex":true}],"ends_at":"2999-01-01T00:00:00Z","created_by":"me","comment":"x"}`, "matchers[0].value"},
		{`{"matchers":[{"name":"service","value":"a"}],"created_by":"me","comment":"x"}`, "ends_at"},
		{`{"matchers":[{"name":"service","value":"a"}],"ends_at":"2000-01-01T00:00:00Z","created_by":"me","comment":"x"}`, "ends_at"},
		{`{"matchers":[{"name":"service","value":"a"}],"ends_at":"2999-01-01T00:00:00Z","comment":"x"}`, "created_by"},
		{`{"matchers":[{"name":"service","value":"a"}],"ends_at":"2999-01-01T00:00:00Z","created_by":"me"}`, "comment"},
	} {
		var e struct{ Field string }
		if code := h.do(http.MethodPost, "/v1/silences", tc.body, &e); code != http.StatusBadRequest || e.Field != tc.field {
			t.Errorf("POST %s = %d field %q, want 400 %q", tc.body, code, e.Field, tc.field)
		}
	}
	var s notifier.Silence
	body := `{"matchers":[{"name":"service","value":"batch-.*","is_regex":true}],"ends_at":"2999-01-01T00:00:00Z","created_by":"me","comment":"maintenance"}`
	if code := h.do(http.MethodPost, "/v1/silences", body, &s); code != http.StatusCreated || s.ID == "" || s.Status.State != "active" {
		t.Fatalf("POST /v1/silences = %d %+v", code, s)
	}
	var list struct{ Items []notifier.Silence }
	if h.do(http.MethodGet, "/v1/silences?state=active", "", &list); len(list.Items) != 1 || list.Items[0].ID != s.ID {
		t.Errorf("GET /v1/silences = %+v", list)
	}
	// The notifier's view of the bucket follows the create: probe until a
	// silenced alert is recorded as silenced.
	h.probe("batch-probe", notifier.OutcomeSilenced)
	a := downAlert("batch-1", 1)
	a.Owner = &vigil.Owner{Type: "rec", Target: "fred"}
	b := downAlert("other", 2)
	b.Owner = &vigil.Owner{Type: "rec", Target: "fred"}
	h.alert(a)
	h.waitAttempts(a.ID, notifier.OutcomeSilenced, 1)
	h.alert(b)
	h.waitAttempts(b.ID, notifier.OutcomeDelivered, 1)
	if got := rec.to("fred"); len(got) != 1 || got[0].Title != "other is down" {
		t.Errorf("fred got %+v, want only the unsilenced alert", got)
	}

	var exp notifier.Silence
	if code := h.do(http.MethodDelete, "/v1/silences/"+s.ID, "", &exp); code != http.StatusOK || exp.Status.State != "expired" {
		t.Errorf("DELETE = %d %+v", code, exp)
	}
	if code := h.do(http.MethodGet, "/v1/silences/"+s.ID, "", &exp); code != http.StatusOK || exp.Status.State != "expired" {
		t.Errorf("GET after DELETE = %d %+v", code, exp)
	}
	if code := h.do(http.MethodGet, "/v1/silences/nope", "", nil); code != http.StatusNotFound {
		t.Errorf("GET unknown silence = %d, want 404", code)
	}
	h.probe("batch-probe", notifier.OutcomeDelivered)
	c := downAlert("batch-2", 3)
	c.Owner = &vigil.Owner{Type: "rec", Target: "fred"}
	h.alert(c)
	h.waitAttempts(c.ID, notifier.OutcomeDelivered, 1)
}

func TestDeliveriesFilterAndPage(t *testing.T) {
	rec := newRecorder("rec")
	h := start(t, testConfig(rec), 1)
	for i := range 5 {
		a := downAlert(fmt.Sprintf("s %d", i%2), uint64(i+1)) // names that need a token
		a.Owner = &vigil.Owner{Type: "rec", Target: "gus"}
		h.alert(a)
	}
	bustest.Eventually(t, func() error {
		if n := len(h.deliveries(nil)); n != 5 {
			return fmt.Errorf("%d attempts", n)
		}
		return nil
	})
	if got := h.deliveries(url.Values{"service": {"s 0"}}); len(got) != 3 {
		t.Errorf("service=s 0: %d attempts, want 3", len(got))
	}
	if got := h.deliveries(url.Values{"channel": {"rec"}, "service": {"s 1"}, "limit": {"1"}}); len(got) != 2 {
		t.Errorf("channel=rec service=s 1, one per page: %d attempts, want 2", len(got))
	}
	all := h.deliveries(url.Values{"limit": {"2"}})
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq {
			t.Errorf("not newest first: %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	if got := h.deliveries(url.Values{"channel": {"mail"}}); len(got) != 0 {
		t.Errorf("channel=mail: %d attempts", len(got))
	}
	for _, q := range []string{"status=nope", "limit=0", "cursor=x", "channel=A.B"} {
		var e struct{ Field string }
		if code := h.do(http.MethodGet, "/v1/deliveries?"+q, "", &e); code != http.StatusBadRequest || e.Field == "" {
			t.Errorf("GET /v1/deliveries?%s = %d %q, want 400 naming the field", q, code, e.Field)
		}
	}
}

func TestMassOutageIsOneMessagePerTarget(t *testing.T) {
	rec := newRecorder("rec")
	cfg := testConfig(rec)
	cfg.Default = notifier.DefaultRoute{Receivers: []vigil.Owner{{Type: "rec", Target: "ops"}}}
	h := start(t, cfg, 2)
	const n = 12
	for i := range n {
		a := downAlert(fmt.Sprintf("svc-%02d", i), uint64(i+1))
		a.Batch, a.BatchSize = "sweep-1", n
		if i < 3 {
			a.Owner = &vigil.Owner{Type: "rec", Target: "team-a"}
		}
		h.alert(a)
	}
	h.settled()
	bustest.Eventually(t, func() error {
		if len(rec.to("ops")) == 0 || len(rec.to("team-a")) == 0 {
			return fmt.Errorf("not delivered yet")
		}
		return nil
	})
	h.settled()
	ops := rec.to("ops")
	if len(ops) != 1 || len(ops[0].Alerts) != n || !strings.HasPrefix(ops[0].Title, "12 services are down") {
		t.Fatalf("ops got %d messages (%+v), want one listing %d services", len(ops), ops, n)
	}
	for i := range n {
		if !strings.Contains(ops[0].Body, fmt.Sprintf("svc-%02d", i)) {
			t.Errorf("ops message misses svc-%02d:\n%s", i, ops[0].Body)
		}
	}
	if a := rec.to("team-a"); len(a) != 1 || len(a[0].Alerts) != 3 {
		t.Errorf("team-a got %+v, want one message about its 3 services", a)
	}
}

func TestRepeatWhileDownUntilRecovery(t *testing.T) {
	rec := newRecorder("rec")
	cfg := testConfig(rec)
	cfg.Owner = notifier.Policy{Repeat: 100 * time.Millisecond}
	h := start(t, cfg, 1)
	a := downAlert("cron", 4)
	a.Owner = &vigil.Owner{Type: "rec", Target: "hal"}
	h.verdict(vigil.Verdict{Service: "cron", Status: vigil.StatusDown, DownSeq: 4})
	h.alert(a)
	bustest.Eventually(t, func() error {
		if n := len(rec.to("hal")); n < 3 {
			return fmt.Errorf("%d messages, want the first and two repeats", n)
		}
		return nil
	})
	if got := rec.to("hal")[1]; !strings.HasPrefix(got.Title, "Still down: cron") || !strings.Contains(got.Body, "down for") {
		t.Errorf("repeat = %q / %q", got.Title, got.Body)
	}
	h.verdict(vigil.Verdict{Service: "cron", Status: vigil.StatusUp})
	h.waitAttempts(a.ID, notifier.OutcomeResolved, 1)
	h.settled()
	n := len(rec.to("hal"))
	// Nothing is queued any more: no repeat can follow.
	if q := h.streamMsgs(vigil.StreamDeliveries); q != 0 {
		t.Errorf("%d jobs still queued after %d messages", q, n)
	}
}

func TestEscalationWhenStillDown(t *testing.T) {
	rec := newRecorder("rec")
	cfg := testConfig(rec)
	cfg.Routes = []notifier.Route{{
		Name: "prod", Match: notifier.Match{Service: "prod-.*"},
		Receivers: []vigil.Owner{{Type: "rec", Target: "mail-team"}},
		Policy:    notifier.Policy{Escalate: []notifier.Escalation{{After: 200 * time.Millisecond, Receivers: []vigil.Owner{{Type: "rec", Target: "pager"}}}}},
	}}
	h := start(t, cfg, 1)
	stays := downAlert("prod-db", 1)
	h.verdict(vigil.Verdict{Service: "prod-db", Status: vigil.StatusDown, DownSeq: 1})
	heals := downAlert("prod-web", 2)
	h.verdict(vigil.Verdict{Service: "prod-web", Status: vigil.StatusUp}) // recovered before the step
	h.alert(stays)
	h.alert(heals)
	h.waitAttempts(stays.ID, notifier.OutcomeDelivered, 2)
	h.waitAttempts(heals.ID, notifier.OutcomeResolved, 1)
	h.settled()
	pager := rec.to("pager")
	if len(pager) != 1 || !strings.HasPrefix(pager[0].Title, "Escalated: prod-db") {
		t.Fatalf("pager got %+v, want one escalation about prod-db", pager)
	}
	// The recovery reaches whoever the escalation told.
	rcv := vigil.Alert{
		ID: "recovered:prod-db:1", Kind: vigil.AlertRecovered, Service: "prod-db", Level: vigil.LevelInfo,
		At: time.Now().UTC(), DownSince: stays.Deadline, LastPulse: stays.Deadline.Add(3*time.Minute + 12*time.Second), DownSeq: 1,
	}
	h.alert(rcv)
	h.waitAttempts(rcv.ID, notifier.OutcomeDelivered, 2)
	if got := rec.to("pager"); len(got) != 2 || !strings.Contains(got[1].Body, "down for 3m12s") {
		t.Errorf("pager's recovery = %+v", got)
	}
}
