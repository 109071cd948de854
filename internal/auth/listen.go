package auth

import (
	"net"
	"strings"
)

// Loopback reports whether the listen address hostport ("127.0.0.1:8080",
// "[::1]:0", "localhost:8080") binds to loopback only, where running
// without tokens exposes the API to this machine alone. An empty host
// (":8080") binds every interface and is not loopback; neither is a name
// other than localhost, which could resolve anywhere.
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
