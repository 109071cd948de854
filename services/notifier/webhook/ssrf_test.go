package webhook_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigil-monitor/vigil"
	"github.com/vigil-monitor/vigil/services/notifier/channel"
	"github.com/vigil-monitor/vigil/services/notifier/webhook"
)

// countingServer is a receiver on 127.0.0.1 that counts the connections it
// accepts and the requests it serves.
func countingServer(t *testing.T) (srv *httptest.Server, conns, reqs *atomic.Int64) {
	t.Helper()
	conns, reqs = new(atomic.Int64), new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reqs.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns, reqs
}

// defaultChannel is a channel with the default address check (no
// allowed_networks), edited by edit.
func defaultChannel(t *testing.T, edit func(*webhook.Config)) *webhook.Channel {
	t.Helper()
	cfg := webhook.DefaultConfig()
	cfg.Secret = secret
	if edit != nil {
		edit(&cfg)
	}
	ch, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ch
}

// wantBlocked checks that err is a permanent *webhook.BlockedError for addr
// of class whose message names the address and allowed_networks.
func wantBlocked(t *testing.T, err error, addr, class string) {
	t.Helper()
	var b *webhook.BlockedError
	switch {
	case !channel.IsPermanent(err):
		t.Errorf("Send = %v, want a permanent error", err)
	case !errors.As(err, &b):
		t.Errorf("Send = %v, want a *webhook.BlockedError", err)
	case b.Addr.String() != addr || b.Class != class:
		t.Errorf("blocked %s (%s), want %s (%s)", b.Addr, b.Class, addr, class)
	case !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "allowed_networks"):
		t.Errorf("error %q does not name the address and allowed_networks", err)
	}
}

func TestLoopbackIsRefusedByDefault(t *testing.T) {
	srv, conns, reqs := countingServer(t)
	wantBlocked(t, send(t, defaultChannel(t, nil), srv.URL+"/hook"), "127.0.0.1", "loopback")
	// The IPv4-mapped IPv6 form of the same address.
	mapped := strings.Replace(srv.URL, "127.0.0.1", "[::ffff:127.0.0.1]", 1)
	wantBlocked(t, send(t, defaultChannel(t, nil), mapped), "127.0.0.1", "loopback")
	// allowed_hosts names the host, but the address check still applies.
	ch := defaultChannel(t, func(c *webhook.Config) { c.AllowedHosts = []string{"127.0.0.1"} })
	wantBlocked(t, send(t, ch, srv.URL), "127.0.0.1", "loopback")
	if n, r := conns.Load(), reqs.Load(); n != 0 || r != 0 {
		t.Errorf("the receiver saw %d connections and %d requests, want none", n, r)
	}
}

func TestAllowedNetworksLetsLoopbackThrough(t *testing.T) {
	srv, _, reqs := countingServer(t)
	ch := defaultChannel(t, func(c *webhook.Config) {
		c.AllowedNetworks = []string{"127.0.0.0/8"}
		c.DenyPrivate = true
	})
	if err := send(t, ch, srv.URL+"/hook"); err != nil {
		t.Fatalf("Send with allowed_networks 127.0.0.0/8: %v", err)
	}
	if reqs.Load() != 1 {
		t.Errorf("%d requests, want 1", reqs.Load())
	}
	// A single address is a /32.
	ch = defaultChannel(t, func(c *webhook.Config) { c.AllowedNetworks = []string{"127.0.0.1"} })
	if err := send(t, ch, srv.URL+"/hook"); err != nil {
		t.Fatalf("Send with allowed_networks 127.0.0.1: %v", err)
	}
	// Another loopback network does not help.
	ch = defaultChannel(t, func(c *webhook.Config) { c.AllowedNetworks = []string{"127.0.1.0/24", "10.0.0.0/8"} })
	wantBlocked(t, send(t, ch, srv.URL), "127.0.0.1", "loopback")
}

// TestNameResolvingToLoopbackIsRefused proves that the check applies to the
// address the name resolved to, not to the name in the URL.
func TestNameResolvingToLoopbackIsRefused(t *testing.T) {
	addrs, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", "localhost")
	if err != nil || len(addrs) == 0 {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	srv, conns, reqs := countingServer(t)
	target := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	err = send(t, defaultChannel(t, nil), target)
	var b *webhook.BlockedError
	if !channel.IsPermanent(err) || !errors.As(err, &b) || !b.Addr.IsLoopback() || !strings.Contains(err.Error(), `"localhost"`) {
		t.Errorf("Send to %s = %v, want a permanent refusal of a loopback address naming the host", target, err)
	}
	if n, r := conns.Load(), reqs.Load(); n != 0 || r != 0 {
		t.Errorf("the receiver saw %d connections and %d requests, want none", n, r)
	}
}

// TestOtherClassesAreRefusedBeforeConnecting sends to addresses of every
// default class; none is connected to (the refusal comes before connect,
// so not even an unreachable address takes time).
func TestOtherClassesAreRefusedBeforeConnecting(t *testing.T) {
	ch := defaultChannel(t, nil)
	for target, want := range map[string][2]string{
		"http://169.254.169.254/latest/meta-data/": {"169.254.169.254", "link-local"},
		"http://[fd00:ec2::254]/latest/meta-data/": {"fd00:ec2::254", "cloud metadata"},
		"http://0.0.0.0:1/":                        {"0.0.0.0", "unspecified"},
		"http://[::]:1/":                           {"::", "unspecified"},
		"http://[::1]:1/":                          {"::1", "loopback"},
		"http://224.0.0.1/":                        {"224.0.0.1", "multicast"},
		"http://[::ffff:169.254.169.254]/":         {"169.254.169.254", "link-local"},
	} {
		t.Run(target, func(t *testing.T) { wantBlocked(t, send(t, ch, target), want[0], want[1]) })
	}
	private := defaultChannel(t, func(c *webhook.Config) { c.DenyPrivate = true })
	wantBlocked(t, send(t, private, "http://10.255.255.1:9/"), "10.255.255.1", "private")
	if err := send(t, private, "http://10.255.255.1:9/"); !strings.Contains(err.Error(), "deny_private") {
		t.Errorf("error %q does not name deny_private", err)
	}
}

// TestCustomClientIsTheCallersResponsibility: an injected HTTPClient is
// used as it is, without the default client's address check.
func TestCustomClientIsTheCallersResponsibility(t *testing.T) {
	srv, _, reqs := countingServer(t)
	ch := defaultChannel(t, func(c *webhook.Config) { c.HTTPClient = srv.Client() })
	if err := send(t, ch, srv.URL); err != nil || reqs.Load() != 1 {
		t.Errorf("Send with a custom client = %v (%d requests), want delivered", err, reqs.Load())
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr                   string
		dflt, private, allowed string // class refused: by default, with deny_private, with deny_private and allowed_networks
	}{
		{"127.0.0.1", "loopback", "loopback", ""},
		{"127.255.255.254", "loopback", "loopback", ""},
		{"::1", "loopback", "loopback", "loopback"},
		{"::ffff:127.0.0.1", "loopback", "loopback", ""},
		{"169.254.169.254", "link-local", "link-local", ""},
		{"169.254.0.1", "link-local", "link-local", ""},
		{"::ffff:169.254.169.254", "link-local", "link-local", ""},
		{"fe80::1", "link-local", "link-local", "link-local"},
		{"fe80::1%eth0", "link-local", "link-local", "link-local"},
		{"0.0.0.0", "unspecified", "unspecified", "unspecified"},
		{"0.1.2.3", "unspecified", "unspecified", "unspecified"},
		{"::", "unspecified", "unspecified", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified", "unspecified", "unspecified"},
		{"224.0.0.251", "multicast", "multicast", "multicast"},
		{"239.255.255.250", "multicast", "multicast", "multicast"},
		{"ff02::1", "multicast", "multicast", "multicast"},
		{"fd00:ec2::254", "cloud metadata", "cloud metadata", "cloud metadata"},
		{"100.100.100.200", "cloud metadata", "cloud metadata", "cloud metadata"},
		{"168.63.129.16", "cloud metadata", "cloud metadata", "cloud metadata"},
		{"10.0.0.1", "", "private", ""},
		{"10.255.255.255", "", "private", ""},
		{"::ffff:10.1.2.3", "", "private", ""},
		{"172.16.0.1", "", "private", "private"},
		{"172.31.255.255", "", "private", "private"},
		{"172.32.0.1", "", "", ""},
		{"192.168.1.1", "", "private", "private"},
		{"100.64.0.1", "", "private", "private"},
		{"100.127.255.255", "", "private", "private"},
		{"100.128.0.1", "", "", ""},
		{"fc00::1", "", "private", "private"},
		{"fd12:3456::1", "", "private", ""},
		{"fe00::1", "", "", ""},
		{"8.8.8.8", "", "", ""},
		{"2001:db8::1", "", "", ""},
		{"::ffff:8.8.8.8", "", "", ""},
		{"169.255.0.1", "", "", ""},
		{"128.0.0.1", "", "", ""},
	} {
		a := netip.MustParseAddr(tc.addr)
		for _, c := range []struct {
			want string
			cfg  webhook.Config
		}{
			{tc.dflt, webhook.Config{}},
			{tc.private, webhook.Config{DenyPrivate: true}},
			{tc.allowed, webhook.Config{DenyPrivate: true, AllowedNetworks: []string{"127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "fd12::/16"}}},
		} {
			err := c.cfg.CheckAddr(a)
			var b *webhook.BlockedError
			got := ""
			if errors.As(err, &b) {
				got = b.Class
			} else if err != nil {
				t.Errorf("CheckAddr(%s) = %v, want nil or a *BlockedError", a, err)
			}
			if got != c.want {
				t.Errorf("%s with deny_private=%t allowed_networks=%v: refused as %q, want %q",
					a, c.cfg.DenyPrivate, c.cfg.AllowedNetworks, got, c.want)
			}
		}
	}
}

func TestAllowedNetworksValidation(t *testing.T) {
	for _, ok := range [][]string{
		{"127.0.0.0/8"}, {"127.0.0.1/8"}, {"10.0.0.0/8", "192.168.0.0/16"}, {"fd00::/8"}, {"192.0.2.7"}, {"::1"},
	} {
		c := webhook.Config{AllowedNetworks: ok}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(allowed_networks %v) = %v, want valid", ok, err)
		}
	}
	err := (webhook.Config{AllowedNetworks: []string{"127.0.0.0/8", "10.0.0.0/40"}}).Validate()
	var fe *vigil.FieldError
	if !errors.As(err, &fe) || fe.Field != "allowed_networks" || !strings.Contains(err.Error(), `"10.0.0.0/40"`) {
		t.Errorf("Validate(10.0.0.0/40) = %v, want an allowed_networks error quoting the entry", err)
	}
	_, err = webhook.New(webhook.Config{AllowedNetworks: []string{"intranet"}})
	if err == nil || !strings.Contains(err.Error(), "allowed_networks") || !strings.Contains(err.Error(), `"intranet"`) {
		t.Errorf("New(allowed_networks intranet) = %v, want an error naming the option and the entry", err)
	}
}
