// Command vigil-bench measures vigil's headline figures against the limits
// of the machine in the same run (package bench): ingest, detection,
// notifier, queries and agent.
//
//	go run ./cmd/vigil-bench [scenario...] [--quick] [--clients 1,8,32,64] [--runs n] [--cpuprofile dir] [--memprofile dir] [--out dir] [--vs-node-exporter] [--mass-only]
//
// `vigil-bench ingest` runs the ingest scenario alone; `--clients 32`
// limits its HTTP single-pulse sweep to the reference 32 clients, for
// quicker A/B runs.
//
// Each scenario prints one JSON line to stdout; progress and readable
// tables go to stderr; --out receives results.jsonl, results.txt and the
// SVG plots. See BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-monitor/vigil/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args (flags and scenario names in any order), runs the
// scenarios and returns the exit code: 0 when every scenario succeeded, 1
// when one failed, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "small sizes and short windows: every scenario in under 2 minutes")
	out := fs.String("out", "bench-out", "folder for results.jsonl, results.txt and the SVG plots (empty: none)")
	cpu := fs.String("cpuprofile", "", "folder for a CPU profile of each scenario (<scenario>.cpu.pprof)")
	mem := fs.String("memprofile", "", "folder for an allocation profile of each scenario (<scenario>.mem.pprof)")
	clients := fs.String("clients", "", "ingest: comma-separated HTTP client counts to sweep (default 1,8,32,64; must include 32, the reference)")
	runs := fs.Int("runs", 0, "interleaved runs per measurement, median reported (default 3, --quick 1)")
	vsNE := fs.Bool("vs-node-exporter", false, "agent: also measure prometheus-node-exporter (apt-get installs it if missing)")
	massOnly := fs.Bool("mass-only", false, "detection: run only the mass expiry (skip the lateness sweep and the heap measurement)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vigil-bench [scenario...] [flags]\nscenarios: %s (default: all)\n", strings.Join(bench.Names(), ", "))
		fs.PrintDefaults()
	}
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	for _, n := range names {
		if !slices.Contains(bench.Names(), n) {
			fmt.Fprintf(stderr, "vigil-bench: unknown scenario %q\n", n)
			fs.Usage()
			return 2
		}
	}
	scale := bench.Full()
	if *quick {
		scale = bench.Quick()
	}
	if *massOnly {
		scale.Services, scale.Sweep = 0, nil
	}
	if *runs < 0 {
		fmt.Fprintf(stderr, "vigil-bench: --runs %d must be > 0\n", *runs)
		return 2
	}
	if *runs > 0 {
		scale.Runs = *runs
	}
	if *clients != "" {
		cs, err := parseClients(*clients, scale.Ref)
		if err != nil {
			fmt.Fprintf(stderr, "vigil-bench: --clients: %v\n", err)
			return 2
		}
		scale.Clients = cs
	}
	start := time.Now()
	_, err := bench.Run(ctx, names, bench.Options{
		Scale: scale, Out: *out, CPUProfile: *cpu, MemProfile: *mem, VsNodeExporter: *vsNE, Progress: stderr,
	}, stdout)
	fmt.Fprintf(stderr, "vigil-bench: took %v\n", time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintf(stderr, "vigil-bench: %v\n", err)
		return 1
	}
	return 0
}

// parseClients reads a comma-separated list of client counts ("8,32"),
// each > 0; it must include ref, the count the ingest goal is quoted at.
func parseClients(s string, ref int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a client count > 0", f)
		}
		out = append(out, n)
	}
	if !slices.Contains(out, ref) {
		return nil, fmt.Errorf("%s must include %d, the reference client count", s, ref)
	}
	return out, nil
}
