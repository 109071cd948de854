package bustest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-monitor/vigil/internal/bus"
)

// Cluster is n real nats-servers in this process forming one JetStream
// cluster over routes on 127.0.0.1, each with its own client port and store.
type Cluster struct {
	Nodes []*Server
}

// NewCluster starts an n-node JetStream cluster (n ≥ 3 for R3 assets) and
// waits until every node reports JetStream healthy. Nodes are named n0…n{n-1}
// and shut down when the test ends.
func NewCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	// Route ports must be known before the nodes start: the kernel picks
	// them, and they are released just before the servers bind them.
	ports := make([]int, n)
	var lc net.ListenConfig
	for i := range ports {
		l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("pick a route port: %v", err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	c := &Cluster{}
	for i := range n {
		dir := tb.TempDir()
		conf := filepath.Join(dir, "node.conf")
		text := fmt.Sprintf("cluster {\n  name: test\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n", ports[i], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		e, err := bus.StartEmbedded(bus.ServerConfig{
			Name: fmt.Sprintf("n%d", i), DataDir: filepath.Join(dir, "js"),
			Listen: "127.0.0.1:0", ConfigFile: conf, ReadyTimeout: 30 * time.Second,
		}, Logger(tb))
		if err != nil {
			tb.Fatalf("start node %d: %v", i, err)
		}
		s := &Server{Embedded: e, Dir: dir}
		tb.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, err := bus.NewJetStream(c.Nodes[0].Conn(tb))
	if err != nil {
		tb.Fatal(err)
	}
	for {
		// Without a meta leader the request is not answered at all.
		actx, acancel := context.WithTimeout(ctx, time.Second)
		_, err := js.AccountInfo(actx)
		acancel()
		if err == nil {
			break // the meta leader is elected
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("cluster has no JetStream meta leader: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c
}

// URLs returns the client URLs of every node, comma-separated, for
// nats.Connect.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Conn connects to every node's client port (reconnecting forever), closed
// when the test ends.
func (c *Cluster) Conn(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Node returns the node named name (as a stream's cluster info reports its
// leader), or nil.
func (c *Cluster) Node(name string) *Server {
	for i, s := range c.Nodes {
		if fmt.Sprintf("n%d", i) == name {
			return s
		}
	}
	return nil
}
