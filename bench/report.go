package main

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// figure is one system's figures for one workload over the rounds.
type figure struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"` // rounds that succeeded
	Rounds []cell  `json:"rounds"`
}

// ratio is tcpstate's figure divided by another system's, taken within
// each round; Median is the median of those per-round ratios.
type ratio struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Rounds []float64 `json:"rounds"`
}

// row is one workload's results.
type row struct {
	Workload string             `json:"workload"`
	Title    string             `json:"title"`
	Unit     string             `json:"unit"`
	Figures  map[string]*figure `json:"figures"`
	// Ratios by the system tcpstate is divided by ("gVisor", "kernel").
	Ratios map[string]*ratio `json:"ratios"`
	// Target says what must hold, e.g. "≥ 2× gVisor"; Met whether the
	// median ratio meets it (absent when there is no target or no ratio).
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`

	w *workload
}

// report is the whole run.
type report struct {
	Date          string `json:"date"`
	Machine       string `json:"machine"`
	GoVersion     string `json:"go"`
	GVisorVersion string `json:"gvisor"`
	Rounds        int    `json:"rounds"`
	Duration      string `json:"duration_each"`
	Elapsed       string `json:"elapsed"`
	Load          string `json:"load_at_end"`
	Skipped       string `json:"skipped,omitempty"`
	Rows          []*row `json:"rows"`
}

func numCPU() int { return runtime.NumCPU() }

func gvisorVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "gvisor.dev/gvisor" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func buildReport(o options, sel []*workload, res results, skipped string, elapsed time.Duration) *report {
	rep := &report{
		Date:          time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Machine:       machine(),
		GoVersion:     runtime.Version(),
		GVisorVersion: gvisorVersion(),
		Rounds:        o.rounds,
		Duration:      o.dur.String(),
		Elapsed:       elapsed.Round(time.Second).String(),
		Load:          loadavg(),
		Skipped:       skipped,
	}
	for _, w := range sel {
		byS := res[w.name]
		if byS == nil {
			continue
		}
		r := &row{Workload: w.name, Title: w.title, Unit: w.unit, Figures: map[string]*figure{}, Ratios: map[string]*ratio{}, w: w}
		for sys, cells := range byS {
			f := &figure{Rounds: cells}
			var ok []float64
			for _, c := range cells {
				if c.Err == "" {
					ok = append(ok, c.V)
				}
			}
			f.N = len(ok)
			if len(ok) > 0 {
				f.Median, f.Min, f.Max = median(ok), slices.Min(ok), slices.Max(ok)
			}
			r.Figures[sys] = f
		}
		for _, vs := range []string{sysGVisor, sysKernel} {
			ts, other := byS[sysTcpstate], byS[vs]
			var rs []float64
			for i := 0; i < len(ts) && i < len(other); i++ {
				if ts[i].Err == "" && other[i].Err == "" && other[i].V > 0 {
					rs = append(rs, ts[i].V/other[i].V)
				}
			}
			if len(rs) > 0 {
				r.Ratios[vs] = &ratio{Median: median(rs), Min: slices.Min(rs), Max: slices.Max(rs), Rounds: rs}
			}
		}
		if w.target > 0 {
			op := "≥"
			if w.lowerBetter {
				op = "≤"
			}
			r.Target = fmt.Sprintf("%s %s× %s", op, trimFloat(w.target), w.targetVs)
			if rt := r.Ratios[w.targetVs]; rt != nil {
				met := rt.Median >= w.target
				if w.lowerBetter {
					met = rt.Median <= w.target
				}
				r.Met = &met
			}
		}
		rep.Rows = append(rep.Rows, r)
	}
	return rep
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.2f", f)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// formatValue prints a figure in its unit's usual precision.
func formatValue(v float64, unit string) string {
	switch unit {
	case "Gbit/s":
		if v < 10 {
			return fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("%.1f", v)
	default:
		return groupThousands(int64(math.Round(v)))
	}
}

func groupThousands(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
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
}

// columns of the table, in order.
var columns = []string{sysTcpstate, sysGVisor, sysKernel, sysKernelNoOL}

func (r *row) cell(sys string) string {
	f := r.Figures[sys]
	if f == nil {
		return "–"
	}
	if f.N == 0 {
		return "failed"
	}
	if f.N == 1 || formatValue(f.Min, r.Unit) == formatValue(f.Max, r.Unit) {
		return formatValue(f.Median, r.Unit)
	}
	return fmt.Sprintf("%s (%s–%s)", formatValue(f.Median, r.Unit), formatValue(f.Min, r.Unit), formatValue(f.Max, r.Unit))
}

func (r *row) ratioCell(vs string) string {
	rt := r.Ratios[vs]
	if rt == nil {
		return "–"
	}
	if len(rt.Rounds) == 1 {
		return fmt.Sprintf("%.2f", rt.Median)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", rt.Median, rt.Min, rt.Max)
}

func (r *row) targetCell() string {
	switch {
	case r.Target == "":
		return ""
	case r.Met == nil:
		return r.Target + ": not measured"
	case *r.Met:
		return r.Target + ": **met**"
	default:
		return r.Target + ": not met"
	}
}

// kernelNote says what "kernel" means in a row.
func (r *row) kernelNote() string {
	switch r.w.group {
	case "mem":
		return "kernel = loopback, MTU 65536"
	case "tun":
		return "kernel = veth between two namespaces"
	}
	return ""
}

// markdown is the results table with a line saying how it was made.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s (%s, gVisor %s); %d round(s) of %s each, %s in all, %s at the end. ",
		rep.Date, rep.Machine, rep.GoVersion, rep.GVisorVersion, rep.Rounds, rep.Duration, rep.Elapsed, rep.Load)
	b.WriteString("Each figure is the median over the rounds (min–max); each ratio is tcpstate's figure divided by the other's " +
		"within a round, median over the rounds (min–max). In memory, \"kernel\" is loopback (MTU 65536, in both bulk rows); " +
		"over TUN it is a veth pair between two namespaces. Heap rows: lower is better.\n\n")
	if rep.Skipped != "" {
		fmt.Fprintf(&b, "Skipped the TUN and veth workloads: %s.\n\n", rep.Skipped)
	}
	b.WriteString("| workload | unit | tcpstate | gVisor | kernel | kernel, offloads off | tcpstate/gVisor | tcpstate/kernel | target |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "| %s | %s |", r.Title, r.Unit)
		for _, c := range columns {
			fmt.Fprintf(&b, " %s |", r.cell(c))
		}
		fmt.Fprintf(&b, " %s | %s | %s |\n", r.ratioCell(sysGVisor), r.ratioCell(sysKernel), r.targetCell())
	}
	return b.String()
}

// text is the report for the terminal.
func (rep *report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s, gVisor %s, %d round(s) of %s, %s\n", rep.Date, rep.Machine, rep.GVisorVersion, rep.Rounds, rep.Duration, rep.Load)
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "\n%s (%s, %s)", r.Title, r.Workload, r.Unit)
		if n := r.kernelNote(); n != "" {
			fmt.Fprintf(&b, "; %s", n)
		}
		b.WriteString("\n")
		for _, c := range columns {
			if r.Figures[c] != nil {
				fmt.Fprintf(&b, "  %-22s %s\n", c, r.cell(c))
				for i, cl := range r.Figures[c].Rounds {
					if cl.Err != "" {
						fmt.Fprintf(&b, "  %-22s   round %d: %s\n", "", i+1, cl.Err)
					}
				}
			}
		}
		for _, vs := range []string{sysGVisor, sysKernel} {
			if r.Ratios[vs] != nil {
				fmt.Fprintf(&b, "  %-22s %s\n", "tcpstate/"+vs, r.ratioCell(vs))
			}
		}
		if t := r.targetCell(); t != "" {
			fmt.Fprintf(&b, "  %-22s %s\n", "target", strings.ReplaceAll(t, "**", ""))
		}
	}
	return b.String()
}

// write saves the JSON to out and the table and chart next to it.
func (rep *report) write(out string) error {
	base := strings.TrimSuffix(out, ".json")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{out, append(j, '\n')},
		{base + ".md", []byte(rep.markdown())},
		{base + ".svg", []byte(rep.svg())},
	} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s, %s.md, %s.svg\n", out, base, base)
	return nil
}

// redraw reads the JSON results at out and writes the table and the
// chart again, without measuring anything.
func redraw(out string) error {
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	for _, r := range rep.Rows {
		if r.w = workloadByName(r.Workload); r.w == nil {
			return fmt.Errorf("%s: unknown workload %q", out, r.Workload)
		}
	}
	base := strings.TrimSuffix(out, ".json")
	if err := os.WriteFile(base+".md", []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(base+".svg", []byte(rep.svg()), 0o644)
}

// advantage is how many times better tcpstate does than vs in r: the
// ratio, or its inverse where lower is better.
func (r *row) advantage(vs string) (float64, bool) {
	rt := r.Ratios[vs]
	if rt == nil || rt.Median <= 0 {
		return 0, false
	}
	if r.w.lowerBetter {
		return 1 / rt.Median, true
	}
	return rt.Median, true
}

// svg draws tcpstate's advantage over gVisor and over the kernel per
// workload as horizontal bars on a log scale, with the targets marked.
func (rep *report) svg() string {
	const (
		left   = 300.0 // label column
		plotW  = 560.0
		right  = 60.0
		top    = 86.0
		rowH   = 46.0
		barH   = 15.0
		bottom = 70.0
	)
	rows := rep.Rows
	width := left + plotW + right
	height := top + rowH*float64(len(rows)) + bottom
	// The scale: powers of two around every bar and target.
	lo, hi := 0.5, 2.0
	for _, r := range rows {
		for _, vs := range []string{sysGVisor, sysKernel} {
			if a, ok := r.advantage(vs); ok {
				lo, hi = math.Min(lo, a), math.Max(hi, a)
			}
		}
		if r.w.target > 0 {
			t := r.w.target
			if r.w.lowerBetter {
				t = 1 / t
			}
			hi = math.Max(hi, t)
		}
	}
	// One more power of two on the left leaves room for the figures
	// printed left of the shortest bars.
	l2lo := math.Floor(math.Log2(lo)) - 1
	l2hi := math.Ceil(math.Log2(hi))
	x := func(v float64) float64 {
		return left + (math.Log2(v)-l2lo)/(l2hi-l2lo)*plotW
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="13">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="17" font-weight="bold">tcpstate's advantage, × (higher is better; log scale)</text>`+"\n", 16.0)
	fmt.Fprintf(&b, `<text x="%.0f" y="44" fill="#444">%s</text>`+"\n", 16.0,
		html.EscapeString(fmt.Sprintf("%s, %s, %d round(s) of %s; median of per-round ratios. Heap and RSS: the other's figure ÷ tcpstate's.",
			rep.Date, rep.Machine, rep.Rounds, rep.Duration)))
	// Legend.
	lx := left
	legend := []struct{ color, text string }{{"#1f77b4", "vs gVisor netstack"}, {"#999999", "vs Linux kernel (loopback / veth)"}}
	for _, l := range legend {
		fmt.Fprintf(&b, `<rect x="%.0f" y="58" width="14" height="12" fill="%s"/><text x="%.0f" y="69">%s</text>`+"\n", lx, l.color, lx+19, html.EscapeString(l.text))
		lx += 19 + 8*float64(len(l.text)) + 20
	}
	fmt.Fprintf(&b, `<path d="M %.0f 58 l 5 6 l -5 6 l -5 -6 z" fill="#d62728"/><text x="%.0f" y="69">target</text>`+"\n", lx+5, lx+15)
	// Grid.
	axisY := top + rowH*float64(len(rows))
	for e := l2lo; e <= l2hi; e++ {
		v := math.Exp2(e)
		xx := x(v)
		stroke, sw := "#ddd", 1.0
		if e == 0 {
			stroke, sw = "#333", 1.5
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="%.1f"/>`+"\n", xx, top-6, xx, axisY, stroke, sw)
		label := trimFloat(v)
		if v < 1 {
			label = fmt.Sprintf("1/%.0f", 1/v)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s×</text>`+"\n", xx, axisY+18, label)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#444">right of 1×: tcpstate is ahead; left: behind</text>`+"\n", left+plotW/2, axisY+40)
	for i, r := range rows {
		y := top + rowH*float64(i)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-10, y+rowH/2+4, html.EscapeString(r.Title))
		for j, vs := range []string{sysGVisor, sysKernel} {
			by := y + 6 + float64(j)*(barH+2)
			a, ok := r.advantage(vs)
			if !ok {
				continue
			}
			color := legend[j].color
			x0, x1 := x(1), x(a)
			if x1 < x0 {
				x0, x1 = x1, x0
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>`+"\n", x0, by, math.Max(x1-x0, 1), barH, color)
			tx, anchor := x(a)+4, "start"
			if a < 1 {
				tx, anchor = x(a)-4, "end"
			}
			// Keep the figure clear of the target mark.
			if r.w.target > 0 && r.w.targetVs == vs {
				t := r.w.target
				if r.w.lowerBetter {
					t = 1 / t
				}
				if xt := x(t); anchor == "start" && xt > tx-6 && xt < tx+40 {
					tx = xt + 8
				}
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="11">%s×</text>`+"\n", tx, by+barH-3, anchor, fmt.Sprintf("%.2f", a))
			if r.w.target > 0 && r.w.targetVs == vs {
				t := r.w.target
				if r.w.lowerBetter {
					t = 1 / t
				}
				fmt.Fprintf(&b, `<path d="M %.1f %.1f l 5 %.1f l -5 %.1f l -5 -%.1f z" fill="#d62728"/>`+"\n", x(t), by-1, (barH+2)/2, (barH+2)/2, (barH+2)/2)
			}
		}
		if i > 0 {
			fmt.Fprintf(&b, `<line x1="16" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#eee"/>`+"\n", y, left+plotW, y)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
