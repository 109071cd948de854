package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// identityServer starts an embedded server with role identities and the
// users of conf, and provisions the bus contract on each role's own
// connection, each role creating only what it owns, all at once. It
// returns the server and each role's assets.
func identityServer(t *testing.T, users []natsconn.User) (*bus.Embedded, map[string]*bus.Assets) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(natsconn.UsersConf(users)), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := bus.StartEmbedded(bus.ServerConfig{
		Name: "identity", DataDir: filepath.Join(dir, "js"), Listen: "127.0.0.1:0",
		ConfigFile: conf, Identities: true,
	}, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	assets := map[string]*bus.Assets{}
	var mu sync.Mutex
	var g errgroup.Group
	for _, role := range natsconn.Roles {
		nc, err := e.ConnectRole(role)
		if err != nil {
			t.Fatalf("ConnectRole(%s): %v", role, err)
		}
		t.Cleanup(nc.Close)
		g.Go(func() error {
			js, err := bus.NewJetStream(nc)
			if err != nil {
				return err
			}
			a, err := bus.Provision(ctx, js, bus.Config{Owner: role})
			if err != nil {
				return fmt.Errorf("%s: %w", role, err)
			}
			mu.Lock()
			assets[role] = a
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("provision with role identities: %v", err)
	}
	return e, assets
}

// client is a TCP connection that records the server's permission
// violations.
type client struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []string
}

func dial(t *testing.T, url string, a natsconn.Auth) *client {
	t.Helper()
	c := &client{}
	opts, err := a.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.errs = append(c.errs, err.Error())
		c.mu.Unlock()
	}))
	c.nc, err = nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.nc.Close)
	return c
}

// violation waits until the server has reported a permissions violation
// for op ("Publish" or "Subscription") on subject.
func (c *client) violation(t *testing.T, op, subject string) {
	t.Helper()
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	bustest.Eventually(t, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			if strings.Contains(e, want) {
				return nil
			}
		}
		return fmt.Errorf("no %q among %q", want, c.errs)
	})
}

func writeSeed(t *testing.T) (pub, file string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "agent.nk")
	if err := os.WriteFile(file, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, file
}

// TestAgentIdentity proves issue 9's claim against a real server: an agent
// identity stores its own host's stats, and cannot publish another host's
// stats, forge alerts, write any stream or bucket, or read anyone's data.
func TestAgentIdentity(t *testing.T) {
	const host, desk = "web1", "desk 1"
	pub, seed := writeSeed(t)
	perms, err := natsconn.AgentPermissions(host, natsconn.AgentScope{Toast: desk})
	if err != nil {
		t.Fatal(err)
	}
	e, assets := identityServer(t, []natsconn.User{{NKey: pub, Permissions: perms}})
	agent := dial(t, e.ClientURL(), natsconn.Auth{NKeyFile: seed, InboxPrefix: natsconn.HostInbox(host)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("publishes its own stats", func(t *testing.T) {
		js, err := jetstream.New(agent.nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, vigil.HostStatsSubject(host), []byte(`{"host":"web1"}`)); err != nil {
			t.Fatalf("publish own stats: %v", err)
		}
		bustest.Eventually(t, func() error {
			_, err := assets["api"].Hosts.Get(ctx, vigil.Token(host))
			return err
		})
	})

	t.Run("pulses through ingest's intake", func(t *testing.T) {
		// No ingest runs here: "no responders" proves the request got past
		// the publish permission (a denied publish is dropped, not answered).
		_, err := agent.nc.Request(vigil.SubjectInPulse, []byte(`{}`), 5*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("request %s = %v, want no responders", vigil.SubjectInPulse, err)
		}
	})

	t.Run("follows its own toasts only", func(t *testing.T) {
		if _, err := assets["notifier"].JS.Publish(ctx, vigil.ToastSubject(desk), []byte(`{"title":"x"}`)); err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(agent.nc)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := js.OrderedConsumer(ctx, vigil.StreamToasts, jetstream.OrderedConsumerConfig{FilterSubjects: []string{vigil.ToastSubject(desk)}})
		if err != nil {
			t.Fatalf("ordered consumer on own toasts: %v", err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("next toast: %v", err)
		}
		if m.Subject() != vigil.ToastSubject(desk) {
			t.Fatalf("toast subject = %s, want %s", m.Subject(), vigil.ToastSubject(desk))
		}
	})

	denied := []struct{ why, subject string }{
		{"another host's stats", vigil.HostStatsSubject("web2")},
		{"every host's stats", "vigil.host.stats.>"},
		{"a down alert", vigil.AlertSubject(vigil.AlertDown, "db")},
		{"a manual alert", vigil.AlertSubject(vigil.AlertManual, "")},
		{"ingest's alert intake", vigil.SubjectInAlert},
		{"ingest's event intake", vigil.SubjectInEvent},
		{"ingest's cancel intake", vigil.SubjectInCancel},
		{"a pulse record", vigil.PulseSubject("db")},
		{"a verdict", "$KV." + vigil.BucketServices + ".db"},
		{"a silence", "$KV." + vigil.BucketSilences + ".s1"},
		{"a delivery job", vigil.DeliverySubject("mail")},
		{"an event", vigil.EventSubject("db")},
		{"a toast", vigil.ToastSubject(desk)},
		{"a stream create", "$JS.API.STREAM.CREATE." + vigil.StreamAlerts},
		{"a stream update", "$JS.API.STREAM.UPDATE." + vigil.StreamHostStats},
		{"a stream delete", "$JS.API.STREAM.DELETE." + vigil.StreamHostStats},
		{"a stream purge", "$JS.API.STREAM.PURGE." + vigil.StreamHostStats},
		{"a message delete", "$JS.API.STREAM.MSG.DELETE." + vigil.StreamAlerts},
		{"an alert consumer", "$JS.API.CONSUMER.CREATE." + vigil.StreamAlerts},
		{"a named alert consumer", "$JS.API.CONSUMER.CREATE." + vigil.StreamAlerts + ".x.vigil.alert.>"},
		{"a durable consumer", "$JS.API.CONSUMER.DURABLE.CREATE." + vigil.StreamAlerts + ".notifier"},
		{"another desktop's toasts", "$JS.API.CONSUMER.CREATE." + vigil.StreamToasts + ".x." + vigil.ToastSubject("desk2")},
		{"every toast", "$JS.API.CONSUMER.CREATE." + vigil.StreamToasts + ".x.vigil.toast.>"},
		{"a pulse read", "$JS.API.DIRECT.GET.KV_" + vigil.BucketPulses + ".$KV." + vigil.BucketPulses + ".db"},
		{"another host's latest stats", "$JS.API.DIRECT.GET.KV_" + vigil.BucketHosts + ".$KV." + vigil.BucketHosts + ".web2"},
		{"the alert stream's info", "$JS.API.STREAM.INFO." + vigil.StreamAlerts},
		{"the stream list", "$JS.API.STREAM.LIST"},
		{"an ack of the notifier's alerts", "$JS.ACK." + vigil.StreamAlerts + ".notifier.1.1.1.1.0"},
	}
	for _, d := range denied {
		t.Run("cannot publish "+d.why, func(t *testing.T) {
			if err := agent.nc.Publish(d.subject, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			agent.violation(t, "Publish", d.subject)
		})
	}
	for _, subject := range []string{">", "vigil.>", "$KV.>", "vigil.host.stats.web2", "vigil.toast.>", "vigil.in.pulse", "_INBOX.>", natsconn.RoleInbox("api") + ".>", natsconn.HostInbox("web2") + ".>"} {
		t.Run("cannot subscribe to "+subject, func(t *testing.T) {
			if _, err := agent.nc.SubscribeSync(subject); err != nil {
				t.Fatal(err)
			}
			agent.violation(t, "Subscription", subject)
		})
	}

	t.Run("nothing forged was stored", func(t *testing.T) {
		for _, s := range []jetstream.Stream{assets["api"].Alerts, assets["api"].HostStats, assets["api"].Events, assets["api"].Deliveries} {
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(0)
			if info.Config.Name == vigil.StreamHostStats {
				want = 1 // web1's own stats
			}
			if info.State.Msgs != want {
				t.Errorf("stream %s holds %d messages, want %d", info.Config.Name, info.State.Msgs, want)
			}
		}
	})
}

// TestRoleIdentitiesRefuseTCP checks that the in-memory role users cannot
// be used over the client port, and that a client without a user is
// refused once identities are on.
func TestRoleIdentitiesRefuseTCP(t *testing.T) {
	pub, _ := writeSeed(t)
	perms, err := natsconn.AgentPermissions("web1", natsconn.AgentScope{})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := identityServer(t, []natsconn.User{{NKey: pub, Permissions: perms}})
	if nc, err := nats.Connect(e.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous connect succeeded, want an authorization error")
	}
}

// TestRolePermissions checks the tables: each role's own subjects, and no
// role but ingest may publish host stats or answer the intake.
func TestRolePermissions(t *testing.T) {
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		role       string
		publish    []string
		notPublish []string
	}{
		{"ingest", []string{"$KV.vigil_pulses.>", "vigil.event.>", "vigil.host.stats.>"}, []string{"$KV.vigil_services.>", "vigil.delivery.>"}},
		{"watchdog", []string{"$KV.vigil_services.>", "vigil.alert.>", "$KV.vigil_leases.>"}, []string{"$KV.vigil_pulses.>", "vigil.delivery.>"}},
		{"notifier", []string{"vigil.delivery.>", "$JS.ACK.VIGIL_ALERTS.>", "$KV.vigil_silences.>"}, []string{"vigil.alert.>", "$KV.vigil_pulses.>"}},
		{"api", []string{"$JS.API.DIRECT.GET.KV_vigil_pulses.>"}, []string{"vigil.alert.>", "$KV.vigil_pulses.>", "$JS.API.STREAM.CREATE.VIGIL_ALERTS", "$JS.API.STREAM.UPDATE.KV_vigil_pulses"}},
	} {
		p, err := natsconn.RolePermissions(tc.role)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tc.publish {
			if !has(p.Publish, s) {
				t.Errorf("RolePermissions(%s).Publish lacks %s", tc.role, s)
			}
		}
		for _, s := range tc.notPublish {
			if has(p.Publish, s) {
				t.Errorf("RolePermissions(%s).Publish has %s", tc.role, s)
			}
		}
		if p.AllowResponses != (tc.role == "ingest") {
			t.Errorf("RolePermissions(%s).AllowResponses = %v", tc.role, p.AllowResponses)
		}
	}
	if _, err := natsconn.RolePermissions("admin"); err == nil {
		t.Error("RolePermissions(admin) succeeded, want an error")
	}
}
