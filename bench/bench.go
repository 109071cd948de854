// Package bench measures vigil's headline figures in one run, each next to
// the limit of the machine measured in the same run, so that ratios hold on
// a noisy, shared machine. It drives the real roles (services/ingest,
// watchdog, notifier, api) on an embedded JetStream in this process, the
// real vigil-agent binary, and loopback-only peers: a bare net/http JSON
// handler, raw JetStream publishers, an SMTP server, and optionally
// Debian's prometheus-node-exporter.
//
// Each scenario (ingest, detection, notifier, queries, agent) is bounded in
// time, reports one Result, and can be profiled. cmd/vigil-bench is the
// command; BENCHMARKS.md holds the method and the latest figures.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Scale sets the sizes and time bounds of every scenario. Full and Quick
// are the two presets; tests use smaller ones.
type Scale struct {
	// Window is how long each throughput measurement runs, after a warm-up
	// of a fifth of it; Runs is how many times it is repeated (the median
	// is reported).
	Window time.Duration
	Runs   int
	// Clients are the concurrent HTTP clients of the ingest sweep; the
	// ratios use Ref clients.
	Clients []int
	Ref     int

	// Services is the detection headline N; Sweep the Ns of the lateness
	// plot (Services is added if missing). Period and Grace are each
	// service's pulse interval (= next_in) and grace; Silent is one service
	// in Silent going quiet. MassServices pulse once with next_in
	// MassPeriod and go silent all at once.
	Services     int
	Sweep        []int
	Period       time.Duration
	Grace        time.Duration
	Silent       int
	MassServices int
	MassPeriod   time.Duration

	// Mails are delivered for the notifier's throughput; Latency alerts are
	// sent one at a time for its latency.
	Mails   int
	Latency int

	// Events and QueryServices fill the stream and the bucket the queries
	// read; Queries is how many times each cheap query is timed, Scans how
	// many times each full-scan query is.
	Events        int
	QueryServices int
	Queries       int
	Scans         int

	// AgentInterval is vigil-agent's --interval; the agent (and
	// node_exporter) run AgentWarmup before a window of AgentWindow.
	AgentInterval time.Duration
	AgentWarmup   time.Duration
	AgentWindow   time.Duration
}

// Full is the scale BENCHMARKS.md reports: 100,000 services, 1,000,000
// events; it runs for several minutes.
func Full() Scale {
	return Scale{
		Window: 3 * time.Second, Runs: 3, Clients: []int{1, 8, 32, 64}, Ref: 32,
		Services: 100_000, Sweep: []int{1_000, 10_000, 100_000}, Period: 10 * time.Second, Grace: 2 * time.Second,
		Silent: 100, MassServices: 100_000, MassPeriod: 10 * time.Second,
		Mails: 10_000, Latency: 300,
		Events: 1_000_000, QueryServices: 100_000, Queries: 200, Scans: 10,
		AgentInterval: 10 * time.Second, AgentWarmup: 15 * time.Second, AgentWindow: 120 * time.Second,
	}
}

// Quick is the scale of --quick: every scenario at small sizes, under two
// minutes on a 2-core machine. Its figures show that the scenarios work,
// not how fast vigil is.
func Quick() Scale {
	return Scale{
		Window: time.Second, Runs: 1, Clients: []int{1, 8, 32, 64}, Ref: 32,
		Services: 5_000, Sweep: []int{500, 5_000}, Period: 2 * time.Second, Grace: 500 * time.Millisecond,
		Silent: 100, MassServices: 5_000, MassPeriod: 2 * time.Second,
		Mails: 500, Latency: 30,
		Events: 50_000, QueryServices: 5_000, Queries: 30, Scans: 3,
		AgentInterval: 10 * time.Second, AgentWarmup: 2 * time.Second, AgentWindow: 10 * time.Second,
	}
}

// Options configure Run.
type Options struct {
	Scale Scale
	// Out is the folder for the plots (SVG) and results.jsonl/results.txt;
	// empty writes none.
	Out string
	// CPUProfile and MemProfile are folders for <scenario>.cpu.pprof and
	// <scenario>.mem.pprof; empty writes none.
	CPUProfile string
	MemProfile string
	// VsNodeExporter also measures prometheus-node-exporter in the agent
	// scenario.
	VsNodeExporter bool
	// Progress receives progress lines and the tables (stderr); nil
	// discards them.
	Progress io.Writer
	// ModuleDir is the vigil module's root, where the agent scenario builds
	// cmd/vigil-agent; empty asks `go env GOMOD`.
	ModuleDir string
}

// Metric is one reported figure. Goal, when set, is the figure the issues
// ask for ("≥ 24,000/s"); Note says what it is measured against.
type Metric struct {
	Name  string
	Value float64
	Unit  string
	Goal  string
	Note  string
}

// Point is one (x, y) of a plotted series.
type Point struct{ X, Y float64 }

// Result is what one scenario measured. Series are the curves of its
// plots, by name.
type Result struct {
	Scenario string
	Took     time.Duration
	Metrics  []Metric
	Series   map[string][]Point
}

func (r *Result) add(name string, v float64, unit string) *Metric {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit})
	return &r.Metrics[len(r.Metrics)-1]
}

func (r *Result) point(series string, x, y float64) {
	if r.Series == nil {
		r.Series = map[string][]Point{}
	}
	r.Series[series] = append(r.Series[series], Point{x, y})
}

// Value returns the value of the metric called name and whether it exists.
func (r *Result) Value(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// MarshalJSON gives the one-line form printed to stdout:
// {"scenario":"ingest","took_s":12.3,"metrics":{"name":value,…},"units":{…}}.
func (r *Result) MarshalJSON() ([]byte, error) {
	metrics, units := map[string]any{}, map[string]string{}
	for _, m := range r.Metrics {
		v := any(m.Value)
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			v = nil
		}
		metrics[m.Name], units[m.Name] = v, m.Unit
	}
	return json.Marshal(struct {
		Scenario string             `json:"scenario"`
		Took     float64            `json:"took_s"`
		Metrics  map[string]any     `json:"metrics"`
		Units    map[string]string  `json:"units"`
		Series   map[string][]Point `json:"series,omitempty"`
	}{r.Scenario, math.Round(r.Took.Seconds()*10) / 10, metrics, units, r.Series})
}

// Table writes the result as an aligned table: metric, value, unit, goal,
// note.
func (r *Result) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s (%.1f s)\tVALUE\tUNIT\tGOAL\tNOTE\n", strings.ToUpper(r.Scenario), r.Took.Seconds())
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Name, format(m.Value), m.Unit, m.Goal, m.Note)
	}
	_ = tw.Flush()
}

// format prints v with thousands separators from 1,000, whole from 100,
// and with three significant digits below.
func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.Abs(v) >= 1000:
		s := fmt.Sprintf("%.0f", v)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	case v == math.Trunc(v) || math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// scenario is one named measurement.
type scenario struct {
	name string
	run  func(ctx context.Context, e *env, r *Result) error
}

// scenarios lists every scenario in the order Run runs them.
func scenarios() []scenario {
	return []scenario{
		{"ingest", runIngest},
		{"detection", runDetection},
		{"notifier", runNotifier},
		{"queries", runQueries},
		{"agent", runAgent},
	}
}

// Names returns the scenario names, in run order.
func Names() []string {
	var out []string
	for _, s := range scenarios() {
		out = append(out, s.name)
	}
	return out
}

// env is what a scenario gets: the options, a progress logger and a temp
// folder removed after the scenario.
type env struct {
	opts Options
	sc   Scale
	tmp  string
}

func (e *env) logf(format string, args ...any) {
	if e.opts.Progress != nil {
		fmt.Fprintf(e.opts.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Run runs the scenarios called names (all of them when empty), in the
// order Names gives, writes each result's JSON line to stdout as soon as it
// is done and its table to opts.Progress, and then the plots to opts.Out.
// It returns the results and the first error (an unknown scenario, a
// failed scenario, a file that cannot be written); a failed scenario does
// not stop the others.
func Run(ctx context.Context, names []string, opts Options, stdout io.Writer) ([]*Result, error) {
	want := map[string]bool{}
	for _, n := range names {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(Names(), ", "))
		}
		want[n] = true
	}
	for _, dir := range []string{opts.Out, opts.CPUProfile, opts.MemProfile} {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
		}
	}
	jsonl, text := io.Discard, io.Discard
	if opts.Out != "" {
		jf, err := os.Create(filepath.Join(opts.Out, "results.jsonl"))
		if err != nil {
			return nil, err
		}
		defer jf.Close()
		tf, err := os.Create(filepath.Join(opts.Out, "results.txt"))
		if err != nil {
			return nil, err
		}
		defer tf.Close()
		jsonl, text = jf, tf
	}
	var results []*Result
	var errs []error
	for _, s := range scenarios() {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		r, err := runOne(ctx, s, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "%s FAILED: %v\n", s.name, err)
			}
			continue
		}
		results = append(results, r)
		line, err := json.Marshal(r)
		if err != nil {
			return results, err
		}
		fmt.Fprintf(stdout, "%s\n", line)
		fmt.Fprintf(jsonl, "%s\n", line)
		if opts.Progress != nil {
			r.Table(opts.Progress)
		}
		r.Table(text)
	}
	if opts.Out != "" {
		if err := writePlots(opts.Out, results); err != nil {
			errs = append(errs, err)
		}
	}
	return results, errors.Join(errs...)
}

func runOne(ctx context.Context, s scenario, opts Options) (*Result, error) {
	tmp, err := os.MkdirTemp("", "vigil-bench-"+s.name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	e := &env{opts: opts, sc: opts.Scale, tmp: tmp}
	e.logf("%s: start", s.name)
	if opts.CPUProfile != "" {
		f, err := os.Create(filepath.Join(opts.CPUProfile, s.name+".cpu.pprof"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	r := &Result{Scenario: s.name}
	start := time.Now()
	t0, terr := cpuTicks(os.Getpid())
	err = s.run(ctx, e, r)
	r.Took = time.Since(start)
	// How much of the machine this process got, and how busy the machine
	// was: the context every figure above needs on a shared machine.
	if t1, err := cpuTicks(os.Getpid()); err == nil && terr == nil {
		r.add("bench_process_cpu", float64(t1-t0)/clockTicks/r.Took.Seconds(), "cores").Note = fmt.Sprintf("CPU this process used, of %d", runtime.NumCPU())
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				r.add("machine_load_1m", v, "load").Note = "from /proc/loadavg at the end; above the cores, others compete"
			}
		}
	}
	if opts.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if opts.MemProfile != "" {
		runtime.GC()
		f, ferr := os.Create(filepath.Join(opts.MemProfile, s.name+".mem.pprof"))
		if ferr != nil {
			return nil, ferr
		}
		defer f.Close()
		if ferr := pprof.Lookup("allocs").WriteTo(f, 0); ferr != nil {
			return nil, ferr
		}
	}
	if err != nil {
		return nil, err
	}
	e.logf("%s: done in %v", s.name, r.Took.Round(100*time.Millisecond))
	return r, nil
}

// quantiles returns the p-quantiles of ds (sorted in place), in
// milliseconds; NaN when ds is empty.
func quantiles(ds []time.Duration, ps ...float64) []float64 {
	slices.Sort(ds)
	out := make([]float64, len(ps))
	for i, p := range ps {
		if len(ds) == 0 {
			out[i] = math.NaN()
			continue
		}
		k := min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)
		out[i] = float64(ds[max(k, 0)]) / float64(time.Millisecond)
	}
	return out
}

// median returns the median of xs (sorted in place).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}
