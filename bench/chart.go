package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The chart: two panels side by side (fan-out and RPC), each with throughput on a left
// log axis and p99 latency on a right log axis against subscribers or callers on a log
// X axis; one polyline per router and metric; a shared legend below.
const (
	svgW, svgH     = 1090, 470
	plotTop        = 96
	plotH          = 270
	plotW          = 360
	colThroughput  = "#1f77b4"
	colP99         = "#d62728"
	colGrid        = "#e4e4e4"
	colAxis        = "#444"
	fontFamily     = "Helvetica, Arial, sans-serif"
	dashTarget     = "7 4"
	markerRadius   = 4
	legendY        = 440
	panelLeftFirst = 90
	panelGap       = 190
)

type series struct {
	name   string // legend text
	router string // "switchyard" or "target"
	metric string // "throughput" or "p99"
	xs, ys []float64
}

type panel struct {
	title, xLabel, yLabel string
	series                []series
}

// Series of the chart: for each panel group, a throughput and a p99 series per router
// with at least one point.
func chartPanels(res *Results) []panel {
	mk := func(group, title, xLabel, yLabel string) panel {
		p := panel{title: title, xLabel: xLabel, yLabel: yLabel}
		runs := slices.Clone(res.Runs)
		slices.SortStableFunc(runs, func(a, b Run) int { return a.X - b.X })
		for _, router := range []string{"switchyard", "target"} {
			thr := series{name: router + " throughput", router: router, metric: "throughput"}
			lat := series{name: router + " p99", router: router, metric: "p99"}
			for _, r := range runs {
				o := r.Switchyard
				if router == "target" {
					o = r.Target
				}
				if r.Group != group || r.X <= 0 || !o.OK() {
					continue
				}
				if v := o.Result.MsgsPerSec; v > 0 {
					thr.xs, thr.ys = append(thr.xs, float64(r.X)), append(thr.ys, v)
				}
				if v := p99(o.Result); v > 0 {
					lat.xs, lat.ys = append(lat.xs, float64(r.X)), append(lat.ys, v)
				}
			}
			for _, s := range []series{thr, lat} {
				if len(s.xs) > 0 {
					p.series = append(p.series, s)
				}
			}
		}
		return p
	}
	return []panel{
		mk(GroupFanout, "Pub/sub fan-out: 1 publisher, N subscribers", "subscribers (log)", "delivered events/s (log)"),
		mk(GroupRPC, "RPC: N callers, 1 callee", "callers (log)", "calls/s (log)"),
	}
}

// WriteSVG writes the chart of res as a standalone SVG document.
func WriteSVG(w io.Writer, res *Results) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s">`+"\n",
		svgW, svgH, svgW, svgH, fontFamily)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="30" text-anchor="middle" font-size="19" font-weight="bold">%s</text>`+"\n",
		svgW/2, esc("switchyard end to end: throughput and p99 latency"))
	sub := fmt.Sprintf("%s · commit %s · %s, %d CPUs · %s · WebSocket %s, %d-byte payloads · load avg %s",
		res.Date.Format("2006-01-02"), res.Commit, res.Machine.CPU, res.Machine.CPUs, res.GoVersion,
		res.Serializer, res.Size, orDash(res.LoadAvg))
	if res.Target != "" {
		sub += " · target " + res.Target
	}
	fmt.Fprintf(&b, `<text x="%d" y="52" text-anchor="middle" font-size="12" fill="#555">%s</text>`+"\n", svgW/2, esc(sub))
	panels := chartPanels(res)
	hasTarget := false
	for i, p := range panels {
		drawPanel(&b, p, float64(panelLeftFirst+i*(plotW+panelGap)))
		for _, s := range p.series {
			hasTarget = hasTarget || s.router == "target"
		}
	}
	drawLegend(&b, hasTarget)
	b.WriteString("</svg>\n")
	w.Write(b.Bytes())
}

func drawPanel(b *bytes.Buffer, p panel, left float64) {
	top, bottom, right := float64(plotTop), float64(plotTop+plotH), left+plotW
	fmt.Fprintf(b, `<g class="panel">`+"\n")
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n",
		left+plotW/2, top-16, esc(p.title))

	var xs, thr, lat []float64
	for _, s := range p.series {
		xs = append(xs, s.xs...)
		if s.metric == "throughput" {
			thr = append(thr, s.ys...)
		} else {
			lat = append(lat, s.ys...)
		}
	}
	// Frame and axis titles first, so that an empty panel still reads.
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n", left, top, plotW, plotH, colAxis)
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle" font-size="13">%s</text>`+"\n", left+plotW/2, bottom+40, esc(p.xLabel))
	fmt.Fprintf(b, `<text transform="translate(%g %g) rotate(-90)" text-anchor="middle" font-size="13" fill="%s">%s</text>`+"\n",
		left-62, top+plotH/2, colThroughput, esc(p.yLabel))
	fmt.Fprintf(b, `<text transform="translate(%g %g) rotate(90)" text-anchor="middle" font-size="13" fill="%s">%s</text>`+"\n",
		right+62, top+plotH/2, colP99, esc("p99 latency (log)"))
	if len(xs) == 0 {
		fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle" font-size="14" fill="#888">no data</text>`+"\n</g>\n", left+plotW/2, top+plotH/2)
		return
	}

	// X: log scale with a tick at every measured count.
	xt := uniqueSorted(xs)
	xlo, xhi := math.Log10(xt[0]), math.Log10(xt[len(xt)-1])
	pad := math.Max(0.12*(xhi-xlo), 0.3)
	xlo, xhi = xlo-pad, xhi+pad
	xpos := func(x float64) float64 { return left + (math.Log10(x)-xlo)/(xhi-xlo)*plotW }
	for _, x := range xt {
		px := xpos(x)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="%s"/>`+"\n", px, top, px, bottom, colGrid)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="%s"/>`+"\n", px, bottom, px, bottom+5, colAxis)
		fmt.Fprintf(b, `<text class="xtick" x="%.1f" y="%g" text-anchor="middle" font-size="12">%s</text>`+"\n", px, bottom+19, siCount(x))
	}

	// Left Y: throughput, with grid lines; right Y: p99.
	// The domain reaches 5% past the end ticks, so that no point sits on the frame.
	ypos := func(lo, hi float64) func(float64) float64 {
		l, h := math.Log10(lo), math.Log10(hi)
		l, h = l-0.05*(h-l), h+0.05*(h-l)
		return func(v float64) float64 { return bottom - (math.Log10(v)-l)/(h-l)*plotH }
	}
	var ythr, ylat func(float64) float64
	if len(thr) > 0 {
		lo, hi, ticks := logTicks(slices.Min(thr), slices.Max(thr))
		ythr = ypos(lo, hi)
		for _, t := range ticks {
			py := ythr(t)
			fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s"/>`+"\n", left, py, right, py, colGrid)
			fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s"/>`+"\n", left-5, py, left, py, colThroughput)
			fmt.Fprintf(b, `<text class="ytick" x="%g" y="%.1f" text-anchor="end" font-size="12" fill="%s">%s</text>`+"\n",
				left-8, py+4, colThroughput, siCount(t))
		}
	}
	if len(lat) > 0 {
		lo, hi, ticks := logTicks(slices.Min(lat), slices.Max(lat))
		ylat = ypos(lo, hi)
		for _, t := range ticks {
			py := ylat(t)
			fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="%s"/>`+"\n", right, py, right+5, py, colP99)
			fmt.Fprintf(b, `<text class="ytick" x="%g" y="%.1f" text-anchor="start" font-size="12" fill="%s">%s</text>`+"\n",
				right+8, py+4, colP99, latencyLabel(t))
		}
	}
	// Redraw the frame over the grid lines.
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%d" height="%d" fill="none" stroke="%s"/>`+"\n", left, top, plotW, plotH, colAxis)

	for _, s := range p.series {
		col, y := colThroughput, ythr
		if s.metric == "p99" {
			col, y = colP99, ylat
		}
		dash := ""
		if s.router == "target" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, dashTarget)
		}
		var pts []string
		for i := range s.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xpos(s.xs[i]), y(s.ys[i])))
		}
		fmt.Fprintf(b, `<polyline class="series" data-series="%s" points="%s" fill="none" stroke="%s" stroke-width="2.2"%s/>`+"\n",
			esc(s.name), strings.Join(pts, " "), col, dash)
		for i := range s.xs {
			marker(b, s.router, xpos(s.xs[i]), y(s.ys[i]), col)
		}
	}
	b.WriteString("</g>\n")
}

// marker: a filled circle for switchyard, a hollow square for the target.
func marker(b *bytes.Buffer, router string, x, y float64, col string) {
	if router == "target" {
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="white" stroke="%s" stroke-width="1.8"/>`+"\n",
			x-markerRadius, y-markerRadius, 2*markerRadius, 2*markerRadius, col)
		return
	}
	fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%d" fill="%s"/>`+"\n", x, y, markerRadius, col)
}

func drawLegend(b *bytes.Buffer, hasTarget bool) {
	type entry struct{ router, metric, text string }
	entries := []entry{
		{"switchyard", "throughput", "switchyard throughput (left axis)"},
		{"switchyard", "p99", "switchyard p99 latency (right axis)"},
	}
	if hasTarget {
		entries = append(entries, entry{"target", "throughput", "target throughput (left axis)"},
			entry{"target", "p99", "target p99 latency (right axis)"})
	}
	// Entries on one line when they fit, else two per line.
	perLine := len(entries)
	if hasTarget {
		perLine = 2
	}
	colW := 330.0
	for i, e := range entries {
		line, col := i/perLine, i%perLine
		n := min(perLine, len(entries)-line*perLine)
		x := float64(svgW)/2 - colW*float64(n)/2 + colW*float64(col) + 20
		y := float64(legendY + line*20)
		c := colThroughput
		if e.metric == "p99" {
			c = colP99
		}
		dash := ""
		if e.router == "target" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, dashTarget)
		}
		fmt.Fprintf(b, `<line class="legend" x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2.2"%s/>`+"\n", x, y, x+34, y, c, dash)
		marker(b, e.router, x+17, y, c)
		fmt.Fprintf(b, `<text x="%g" y="%g" font-size="13">%s</text>`+"\n", x+42, y+4, esc(e.text))
	}
}

// logTicks returns a log axis domain [lo, hi] around [min, max] on 1-2-5 steps and its
// ticks: every 1-2-5 step over at most 2.5 decades, else the powers of ten.
func logTicks(vmin, vmax float64) (lo, hi float64, ticks []float64) {
	if vmin <= 0 {
		vmin = math.SmallestNonzeroFloat64
	}
	vmax = math.Max(vmax, vmin)
	step := func(k int) float64 { // ..., 1, 2, 5, 10, 20, 50, ...: index k
		d := math.Floor(float64(k) / 3)
		return []float64{1, 2, 5}[k-int(d)*3] * math.Pow(10, d)
	}
	idx := func(v float64) int { // largest k with step(k) <= v
		k := int(math.Floor(math.Log10(v))) * 3
		for step(k+1) <= v*(1+1e-9) {
			k++
		}
		for step(k) > v*(1+1e-9) {
			k--
		}
		return k
	}
	klo, khi := idx(vmin), idx(vmax)
	if step(khi) < vmax*(1-1e-9) {
		khi++
	}
	if klo == khi {
		klo, khi = klo-1, khi+1
	}
	lo, hi = step(klo), step(khi)
	if math.Log10(hi/lo) <= 2.5 {
		for k := klo; k <= khi; k++ {
			ticks = append(ticks, step(k))
		}
		return lo, hi, ticks
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo)+1e-9)), math.Pow(10, math.Ceil(math.Log10(hi)-1e-9))
	for e := math.Log10(lo); e <= math.Log10(hi)+1e-9; e++ {
		ticks = append(ticks, math.Pow(10, math.Round(e)))
	}
	return lo, hi, ticks
}

func uniqueSorted(v []float64) []float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return slices.Compact(v)
}

// siCount formats 1, 20, 500, 1k, 2.5k, 1M.
func siCount(v float64) string {
	switch {
	case v >= 1e9:
		return trimFloat(v/1e9) + "G"
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

// latencyLabel formats microseconds: 20 µs, 1 ms, 2 s.
func latencyLabel(us float64) string {
	switch {
	case us >= 1e6:
		return trimFloat(us/1e6) + " s"
	case us >= 1e3:
		return trimFloat(us/1e3) + " ms"
	}
	return trimFloat(us) + " µs"
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
