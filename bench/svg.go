package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// plot is one line chart: named series of points, a logarithmic x axis
// (the sweeps grow by factors) and a linear y axis from 0.
type plot struct {
	title, xLabel, yLabel string
	series                []line
}

type line struct {
	name   string
	points []Point
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"}

// writePlots writes detection-lateness.svg and ingest-concurrency.svg to
// dir from the results that have their series.
func writePlots(dir string, results []*Result) error {
	for _, r := range results {
		var p plot
		var file string
		switch r.Scenario {
		case "detection":
			file = "detection-lateness.svg"
			p = plot{title: "Detection lateness after deadline + grace", xLabel: "services", yLabel: "lateness (ms)"}
			for _, n := range []string{"p50", "p99", "max"} {
				p.series = append(p.series, line{n, r.Series[n]})
			}
		case "ingest":
			file = "ingest-concurrency.svg"
			p = plot{title: "HTTP pulses stored per second vs concurrent clients", xLabel: "clients", yLabel: "requests/s"}
			for _, n := range []string{"vigil HTTP pulse", "bare net/http JSON handler"} {
				p.series = append(p.series, line{n, r.Series[n]})
			}
		default:
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, file), p.svg(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// svg renders the plot, 720×420 px.
func (p plot) svg() []byte {
	const w, h, left, right, top, bottom = 720.0, 420.0, 80.0, 200.0, 40.0, 50.0
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	for _, s := range p.series {
		for _, pt := range s.points {
			if pt.X > 0 {
				xmin, xmax = math.Min(xmin, pt.X), math.Max(xmax, pt.X)
			}
			if !math.IsNaN(pt.Y) {
				ymax = math.Max(ymax, pt.Y)
			}
		}
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 1, 10
	}
	if xmax <= xmin {
		xmax = xmin * 10
	}
	yticks := niceTicks(ymax)
	ytop := yticks[len(yticks)-1]
	lx0, lx1 := math.Log10(xmin), math.Log10(xmax)
	pad := (lx1 - lx0) * 0.05
	lx0, lx1 = lx0-pad, lx1+pad
	px := func(x float64) float64 { return left + (math.Log10(x)-lx0)/(lx1-lx0)*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - y/ytop*(h-top-bottom) }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(p.title))
	// Axes, grid and ticks.
	fmt.Fprintf(&b, `<g stroke="#999" stroke-width="1"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>`+"\n",
		left, h-bottom, w-right, h-bottom, left, top, left, h-bottom)
	for _, y := range yticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, py(y), w-right, py(y), left-6, py(y)+4, format(y))
	}
	var xs []float64
	for _, s := range p.series {
		for _, pt := range s.points {
			if !slices.Contains(xs, pt.X) && pt.X > 0 {
				xs = append(xs, pt.X)
			}
		}
	}
	for _, x := range xs {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n",
			px(x), h-bottom, px(x), h-bottom+5, px(x), h-bottom+18, format(x))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s (log scale)</text>`+"\n", (left+w-right)/2, h-12, html.EscapeString(p.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+h-bottom)/2, html.EscapeString(p.yLabel))
	// Series and legend.
	for i, s := range p.series {
		color := palette[i%len(palette)]
		pts := slices.Clone(s.points)
		slices.SortFunc(pts, func(a, b Point) int { return int(math.Copysign(1, a.X-b.X)) })
		var path bytes.Buffer
		for _, pt := range pts {
			if pt.X <= 0 || math.IsNaN(pt.Y) {
				continue
			}
			fmt.Fprintf(&path, "%.1f,%.1f ", px(pt.X), py(pt.Y))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s</title></circle>`+"\n", px(pt.X), py(pt.Y), color, format(pt.X), format(pt.Y))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", bytes.TrimSpace(path.Bytes()), color)
		ly := top + 10 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			w-right+15, ly, w-right+40, ly, color, w-right+46, ly+4, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceTicks returns 0 and about five round steps up to at least top.
func niceTicks(top float64) []float64 {
	if top <= 0 || math.IsNaN(top) {
		return []float64{0, 1}
	}
	raw := top / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for y := 0.0; ; y += step {
		out = append(out, y)
		if y >= top {
			return out
		}
	}
}
