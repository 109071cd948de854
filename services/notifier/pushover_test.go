package notifier_test

import (
	"testing"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier"
	"github.com/vigil-monitor/vigil/services/notifier/pushover"
	"github.com/vigil-monitor/vigil/services/notifier/pushover/pushovertest"
)

func TestPushoverDeliveryRetriesAndDeadLetters(t *testing.T) {
	srv := pushovertest.New(t)
	cfg := pushover.DefaultConfig()
	cfg.Token, cfg.BaseURL, cfg.HTTPClient = pushovertest.Token, srv.URL(), srv.Client()
	ch, err := pushover.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, testConfig(ch), 1)

	// 500, then accepted: the owner's key gets one message.
	srv.Fail(500, 1)
	a := downAlert("backup", 1)
	a.Owner = &vigil.Owner{Type: vigil.ChannelPushover, Target: pushovertest.User}
	h.alert(a)
	got := h.waitAttempts(a.ID, notifier.OutcomeDelivered, 1)
	if got[0].Attempt != 2 || got[0].Target != "uQiR…VRsG" {
		t.Errorf("delivered = %+v, want attempt 2 and the key redacted", got[0])
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].User != pushovertest.User || msgs[0].Title != "backup is down" {
		t.Errorf("messages = %+v", msgs)
	}

	// A key Pushover does not know: 400, a dead letter at once.
	b := downAlert("web", 2)
	b.Owner = &vigil.Owner{Type: vigil.ChannelPushover, Target: "unknownKey0123456789abcdefghij"}
	h.alert(b)
	dead := h.waitAttempts(b.ID, notifier.OutcomeDead, 1)
	if dead[0].Attempt != 1 {
		t.Errorf("dead at attempt %d, want 1", dead[0].Attempt)
	}
	h.settled()
}
