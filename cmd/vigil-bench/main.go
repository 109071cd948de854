// Command vigil-bench measures vigil's headline figures against the limits
// of the machine in the same run (package bench): ingest, detection,
// notifier, queries and agent.
//
//	go run ./cmd/vigil-bench [scenario...] [--quick] [--cpuprofile dir] [--memprofile dir] [--out dir] [--vs-node-exporter]
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
	vsNE := fs.Bool("vs-node-exporter", false, "agent: also measure prometheus-node-exporter (apt-get installs it if missing)")
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
