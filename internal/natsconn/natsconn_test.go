package natsconn_test

import (
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/internal/natsconn"
)

func TestRedactURLHidesEveryPassword(t *testing.T) {
	// The last URL does not parse (bad escape): found by FuzzConfigFile.
	got := natsconn.RedactURL("nats://u:s3cret@a:4222, tls://tok@b:4222,nats://c:4222,u:pw@d:4222,nats://u:p%zz/x@e:4222")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "tok@") || strings.Contains(got, "pw") || strings.Contains(got, "%zz") {
		t.Errorf("RedactURL left a secret: %s", got)
	}
	if !strings.Contains(got, "nats://c:4222") {
		t.Errorf("RedactURL changed a URL without user info: %s", got)
	}
}

func TestOptionsFailOnMissingNKeyFile(t *testing.T) {
	if _, err := (natsconn.Auth{NKeyFile: "/nonexistent"}).Options(); err == nil {
		t.Error("an unreadable nkey seed file must fail")
	}
	opts, err := natsconn.Auth{User: "u", Password: "p", Token: "t"}.Options()
	if err != nil || len(opts) != 2 {
		t.Errorf("Options() = %d options, %v; want 2, nil", len(opts), err)
	}
}
