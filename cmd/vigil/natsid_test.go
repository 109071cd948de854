package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-monitor/vigil/internal/bus"
	"github.com/vigil-monitor/vigil/internal/bus/bustest"
	"github.com/vigil-monitor/vigil/internal/natsconn"
)

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, env(nil), &out, &errb); code != 0 {
		t.Fatalf("vigil %s = %d, stderr %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// TestSecureClusterConf checks what docker-compose.secure.yml runs without
// Docker: deploy/nats/cluster-secure.conf with the files of
// gen-certs.sh (vigil nats certs and users) parses, and a node started from
// it (without its cluster routes) admits a role over TLS with its nkey and
// refuses a client without a user.
func TestSecureClusterConf(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "secure")
	runOK(t, "nats", "certs", "--dir", dir, "--hosts", "127.0.0.1,localhost")
	users := runOK(t, "nats", "users", "--nkeys", dir, "--admin", "--agent", "compose-host")
	if err := os.WriteFile(filepath.Join(dir, "users.conf"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ingest.nk", "watchdog.nk", "notifier.nk", "api.nk", "admin.nk", "agent-compose-host.nk", "ca.pem", "server.pem", "server-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("gen-certs output lacks %s: %v", f, err)
		}
	}
	text, err := os.ReadFile("../../deploy/nats/cluster-secure.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(string(text), "/etc/nats/secure", dir)
	conf = strings.ReplaceAll(conf, "store_dir: /data", "store_dir: "+filepath.Join(root, "js"))
	t.Setenv("NATS_NAME", "nats1")
	path := filepath.Join(root, "cluster-secure.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("cluster-secure.conf: %v", err)
	}
	if o.TLSConfig == nil {
		t.Error("cluster-secure.conf: the client port is not on TLS")
	}
	if c := o.Cluster.TLSConfig; c == nil || c.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Error("cluster-secure.conf: the routes are not on mutual TLS")
	}

	single := regexp.MustCompile(`(?s)\ncluster \{.*?\n\}\n`).ReplaceAllString(conf, "\n")
	if single == conf {
		t.Fatal("no cluster block found to strip")
	}
	if err := os.WriteFile(path, []byte(single), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := bus.StartEmbedded(bus.ServerConfig{ConfigFile: path, Listen: "127.0.0.1:0", DataDir: filepath.Join(root, "js")}, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	url := strings.Replace(srv.ClientURL(), "nats://", "tls://", 1)
	opts, err := natsconn.Auth{NKeyFile: filepath.Join(dir, "ingest.nk"), TLSCA: filepath.Join(dir, "ca.pem"), InboxPrefix: natsconn.RoleInbox("ingest")}.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("ingest over TLS with its nkey: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Errorf("ingest reads JetStream's account info: %v", err)
	}
	if nc, err := nats.Connect(url, nats.RootCAs(filepath.Join(dir, "ca.pem")), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a client without a user connected")
	}
}

func TestNATSAgentCommand(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "web1.nk")
	out := runOK(t, "nats", "agent", "--host", "web1", "--toast", "desk", "--nkey", seed)
	for _, want := range []string{`nkey: "U`, `"vigil.host.stats.web1"`, `"vigil.in.pulse"`, `"_INBOX.host.web1.>"`, `"$JS.API.CONSUMER.CREATE.VIGIL_TOASTS.*.vigil.toast.desk"`} {
		if !strings.Contains(out, want) {
			t.Errorf("vigil nats agent output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "vigil.in.alert") {
		t.Errorf("vigil nats agent without --alerts allows vigil.in.alert:\n%s", out)
	}
	fi, err := os.Stat(seed)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode = %v, want 0600", fi.Mode().Perm())
	}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"nats", "agent", "--host", "web1", "--nkey", seed}, env(nil), &bytes.Buffer{}, &errb); code == 0 {
		t.Error("vigil nats agent over an existing seed file succeeded, want a refusal")
	}
	if code := run(context.Background(), []string{"nats", "agent"}, env(nil), &bytes.Buffer{}, &errb); code != cliExitUsage {
		t.Errorf("vigil nats agent without --host = %d, want %d", code, cliExitUsage)
	}
}

// TestUsersExampleIsCurrent checks that deploy/nats/users.example.conf
// lists every subject the role identities allow today; regenerate it as
// its header says when a role's permissions change.
func TestUsersExampleIsCurrent(t *testing.T) {
	text, err := os.ReadFile("../../deploy/nats/users.example.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range natsconn.Roles {
		p, err := natsconn.RolePermissions(role)
		if err != nil {
			t.Fatal(err)
		}
		block := string(text)
		i := strings.Index(block, `user: "`+role+`"`)
		if i < 0 {
			t.Fatalf("users.example.conf has no user %s", role)
		}
		block = block[i:]
		if j := strings.Index(block[1:], `user: "`); j >= 0 {
			block = block[:j+1]
		}
		for _, s := range append(p.Publish, p.Subscribe...) {
			if !strings.Contains(block, `"`+s+`"`) {
				t.Errorf("users.example.conf: user %s lacks %s", role, s)
			}
		}
	}
}

// TestSecureClusterRoutes runs three nodes from cluster-secure.conf in this
// process, their routes on mutual TLS with the CA of vigil nats certs
// (hosts nats1..3 become localhost), and provisions every stream and
// bucket with three replicas through the admin identity: that needs the
// routes up and a JetStream meta leader elected over them.
func TestSecureClusterRoutes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "secure")
	runOK(t, "nats", "certs", "--dir", dir, "--hosts", "127.0.0.1,localhost")
	users := runOK(t, "nats", "users", "--nkeys", dir, "--admin")
	if err := os.WriteFile(filepath.Join(dir, "users.conf"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile("../../deploy/nats/cluster-secure.conf")
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]string, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, ports[i], _ = net.SplitHostPort(l.Addr().String())
		l.Close()
	}
	var nodes []*bus.Embedded
	for i := range 3 {
		conf := strings.ReplaceAll(string(text), "/etc/nats/secure", dir)
		conf = strings.ReplaceAll(conf, "store_dir: /data", "store_dir: "+filepath.Join(root, fmt.Sprint("js", i)))
		conf = strings.ReplaceAll(conf, "http: 0.0.0.0:8222\n", "")
		conf = strings.ReplaceAll(conf, "listen: 0.0.0.0:6222", "listen: 127.0.0.1:"+ports[i])
		for j := range 3 {
			conf = strings.ReplaceAll(conf, fmt.Sprintf("nats-route://nats%d:6222", j+1), "nats-route://localhost:"+ports[j])
		}
		path := filepath.Join(root, fmt.Sprintf("nats%d.conf", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("NATS_NAME", fmt.Sprintf("nats%d", i+1))
		n, err := bus.StartEmbedded(bus.ServerConfig{
			Name: fmt.Sprintf("nats%d", i+1), ConfigFile: path, Listen: "127.0.0.1:0",
			DataDir: filepath.Join(root, fmt.Sprint("js", i)), ReadyTimeout: 30 * time.Second,
		}, bustest.Logger(t).With("node", i+1))
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range nodes {
			n.Shutdown(ctx)
		}
	})
	url := strings.Replace(nodes[0].ClientURL(), "nats://", "tls://", 1)
	opts, err := natsconn.Auth{NKeyFile: filepath.Join(dir, "admin.nk"), TLSCA: filepath.Join(dir, "ca.pem")}.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}
	defer nc.Close()
	js, err := bus.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := bus.Provision(ctx, js, bus.Config{Replicas: 3})
	if err != nil {
		t.Fatalf("provision R3 over TLS routes: %v", err)
	}
	info, err := a.Alerts.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream %s cluster = %+v, want a leader and 2 replicas", info.Config.Name, info.Cluster)
	}
}
