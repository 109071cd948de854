// Command vigil-probe is the health check of vigil's scratch images, which
// have no shell, curl or wget: it GETs each URL given and exits 0 when every
// answer is 2xx within the timeout, 1 otherwise (printing why).
//
//	vigil-probe [--timeout 3s] URL...
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 3*time.Second, "time allowed for each URL")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: vigil-probe [--timeout 3s] URL...")
		os.Exit(2)
	}
	for _, u := range flag.Args() {
		if err := probe(u, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "vigil-probe:", err)
			os.Exit(1)
		}
	}
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", url, resp.Status, body)
	}
	return nil
}
