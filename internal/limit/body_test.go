package limit_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/limit"
)

// TestBodyDeadline sends the headers of a POST and part of its body, then
// stalls: the handler's read must fail with a timeout instead of waiting
// for the rest forever. A GET on the same server is not given a deadline.
func TestBodyDeadline(t *testing.T) {
	readErr := make(chan error, 1)
	srv := httptest.NewServer(limit.BodyDeadline(50*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// A stream handler: it must still be reading after the deadline.
			_, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "get: %v", err)
			return
		}
		_, err := io.ReadAll(r.Body)
		readErr <- err
		w.WriteHeader(http.StatusBadRequest)
	})))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("body read error = %v, want a deadline error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler is still waiting for the body")
	}

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "get: <nil>" {
		t.Errorf("GET answered %q, want %q", body, "get: <nil>")
	}
}
