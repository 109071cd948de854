package bench

import (
	"bytes"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {12, "12"}, {0.4321, "0.432"}, {512.4, "512"}, {1234.4, "1,234"}, {1234567, "1,234,567"}, {-2500, "-2,500"}, {math.NaN(), "-"},
	} {
		if got := format(tc.in); got != tc.want {
			t.Errorf("format(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQuantiles(t *testing.T) {
	ds := []time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	got := quantiles(ds, 0.5, 0.99, 1)
	if want := []float64{3, 5, 5}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("quantiles = %v, want %v", got, want)
	}
	if got := quantiles(nil, 0.5); !math.IsNaN(got[0]) {
		t.Errorf("quantiles(nil) = %v, want NaN", got)
	}
}

func TestProcOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Errorf("cpuTicks(self): %v", err)
	}
	rss, anon, file, err := rssOf(os.Getpid())
	if err != nil || rss <= 0 || anon <= 0 || file < 0 {
		t.Errorf("rssOf(self) = %v, %v, %v, %v; want positive sizes", rss, anon, file, err)
	}
}

func TestPlotSVG(t *testing.T) {
	p := plot{title: "a < b", xLabel: "services", yLabel: "ms", series: []line{
		{"p50", []Point{{1000, 2}, {100, 1}, {10000, 8}}},
		{"empty", nil},
	}}
	svg := p.svg()
	for _, want := range []string{"<svg", "</svg>", "a &lt; b", "<polyline", "10,000", "p50"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("svg lacks %q:\n%s", want, svg)
		}
	}
	if n := strings.Count(string(svg), "<circle"); n != 3 {
		t.Errorf("svg has %d points, want 3", n)
	}
}

func TestNiceTicks(t *testing.T) {
	got := niceTicks(17)
	if got[0] != 0 || got[len(got)-1] < 17 || len(got) > 7 {
		t.Errorf("niceTicks(17) = %v, want 0 … ≥ 17 in a few steps", got)
	}
}
