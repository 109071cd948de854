package webhook

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// BlockedError is the error of a connection the address check refused: the
// target resolved to Addr, an address of class Class ("loopback",
// "link-local", "unspecified", "multicast", "cloud metadata" or "private").
// Send returns it wrapped in channel.Permanent; the connection was never
// attempted, so no request reached the address.
type BlockedError struct {
	Addr  netip.Addr
	Class string
}

func (e *BlockedError) Error() string {
	if e.Class == "private" {
		return fmt.Sprintf("%s is a private address and deny_private is on; add it to allowed_networks to call it", e.Addr)
	}
	return fmt.Sprintf("%s is a %s address, which vigil does not call unless allowed_networks lists it", e.Addr, e.Class)
}

// Addresses refused by default beyond what netip classifies.
var (
	// thisNetwork is 0.0.0.0/8, "this host on this network" (RFC 1122
	// §3.2.1.3): Linux connects 0.0.0.0 to the local host.
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	// sharedSpace is 100.64.0.0/10, carrier-grade NAT (RFC 6598).
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10")
	// metadata are cloud metadata services outside link-local space:
	// AWS IMDS over IPv6, Alibaba Cloud, Azure's WireServer
	// (169.254.169.254, used by AWS, GCP, Azure and others, is link-local).
	metadata = []netip.Addr{
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("100.100.100.200"),
		netip.MustParseAddr("168.63.129.16"),
	}
)

// policy is the compiled address check of a Config.
type policy struct {
	denyPrivate bool
	allowed     []netip.Prefix
}

func (c Config) policy() policy {
	p := policy{denyPrivate: c.DenyPrivate}
	for _, s := range c.AllowedNetworks {
		if n, err := parseNetwork(s); err == nil { // Validate reports the others
			p.allowed = append(p.allowed, n)
		}
	}
	return p
}

// CheckAddr reports whether the webhook channel may connect to a: nil, or a
// *BlockedError. Refused by default are loopback (127.0.0.0/8, ::1),
// link-local (169.254.0.0/16 with the cloud metadata address
// 169.254.169.254, fe80::/10), unspecified (0.0.0.0/8, ::), multicast
// (224.0.0.0/4, ff00::/8), the cloud metadata addresses fd00:ec2::254,
// 100.100.100.200 and 168.63.129.16, and the IPv4-mapped IPv6 form
// (::ffff:127.0.0.1) of each. DenyPrivate adds RFC 1918, 100.64.0.0/10 and
// fc00::/7. An address inside AllowedNetworks is allowed whatever its class.
// An invalid AllowedNetworks entry is ignored here (Validate reports it).
func (c Config) CheckAddr(a netip.Addr) error {
	return c.policy().check(a)
}

func (p policy) check(a netip.Addr) error {
	a = a.WithZone("") // a zoned address matches no prefix
	u := a.Unmap()
	for _, n := range p.allowed {
		if n.Contains(u) || n.Contains(a) {
			return nil
		}
	}
	if class := classify(u, p.denyPrivate); class != "" {
		return &BlockedError{Addr: u, Class: class}
	}
	return nil
}

// classify names the refused class of a, an unmapped address without a
// zone, or returns "" when a may be called.
func classify(a netip.Addr, denyPrivate bool) string {
	switch {
	case !a.IsValid():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsUnspecified(), thisNetwork.Contains(a):
		return "unspecified"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	for _, m := range metadata {
		if a == m {
			return "cloud metadata"
		}
	}
	if denyPrivate && (a.IsPrivate() || sharedSpace.Contains(a)) {
		return "private"
	}
	return ""
}

// control is the net.Dialer ControlContext of the default client: it runs
// after DNS resolution and socket creation and before connect, once for
// every address tried, so the address checked is the address connected to.
// address is "ip:port" ("[::1]:443"); one that does not parse is refused.
func (p policy) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: cannot check the address %q: %w", address, err)
	}
	return p.check(ap.Addr())
}

// dialer returns the net.Dialer of the default client: the defaults of
// http.DefaultTransport with the address check.
func (p policy) dialer() *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: p.control}
}
