package track

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Sample is the number of endpoints in each state at one instant.
type Sample struct {
	T      time.Time
	Counts [tcp.NumStates]int
}

// Sample counts the endpoints of every connection by believed state at
// instant at (feed packets up to at first). Both endpoints of a
// connection count.
func (t *Tracker) Sample(at time.Time) Sample {
	s := Sample{T: at}
	now := at.UnixNano()
	for _, r := range t.conns {
		c := t.slab.at(r)
		for d := range c.ep {
			st, _ := c.believed(d, now, t.cfg.TimeWait)
			if int(st) < tcp.NumStates {
				s.Counts[st]++
			}
		}
	}
	return s
}

// timelineColours gives each state a colour: opening states warm,
// ESTABLISHED green, closing states blues and purples.
var timelineColours = [tcp.NumStates]string{
	"#bbbbbb", "#999999", "#f4a261", "#e76f51", "#2a9d8f",
	"#457b9d", "#1d3557", "#e63946", "#9d4edd", "#c77dff", "#a8dadc",
}

// niceStep returns a round step (1, 2 or 5 times a power of ten) giving
// about n intervals over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WriteTimelineSVG draws samples as a stacked area chart: the number of
// endpoints in each state (CLOSED and LISTEN left out) against seconds
// since the first sample, with axes and a legend.
func WriteTimelineSVG(w io.Writer, samples []Sample, title string) error {
	const (
		width, height            = 960.0, 480.0
		left, right, top, bottom = 70.0, 190.0, 50.0, 60.0
	)
	pw, ph := width-left-right, height-top-bottom
	var shown []tcp.State
	maxY := 0
	for _, st := range tcp.States {
		if st == tcp.Closed || st == tcp.Listen {
			continue
		}
		for _, s := range samples {
			if s.Counts[st] > 0 {
				shown = append(shown, st)
				break
			}
		}
	}
	for _, s := range samples {
		sum := 0
		for _, st := range shown {
			sum += s.Counts[st]
		}
		maxY = max(maxY, sum)
	}
	var t0 time.Time
	span := 0.0
	if len(samples) > 0 {
		t0 = samples[0].T
		span = samples[len(samples)-1].T.Sub(t0).Seconds()
	}
	if span <= 0 {
		span = 1
	}
	yStep := niceStep(float64(max(maxY, 1)), 5)
	yMax := math.Ceil(float64(max(maxY, 1))/yStep) * yStep
	xStep := niceStep(span, 8)
	x := func(t time.Time) float64 { return left + pw*t.Sub(t0).Seconds()/span }
	y := func(v float64) float64 { return top + ph - ph*v/yMax }

	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	p(`<rect x="0" y="0" width="%.0f" height="%.0f" fill="white"/>`+"\n", width, height)
	p(`<text x="%.1f" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", left, xmlText(title))
	// Grid and y ticks.
	for v := 0.0; v <= yMax+yStep/2; v += yStep {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, y(v), left+pw, y(v))
		p(`<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, fmtNum(v))
	}
	for v := 0.0; v <= span*1.0001; v += xStep {
		px := left + pw*v/span
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", px, top, px, top+ph)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px, top+ph+18, fmtNum(v))
	}
	// Stacked areas, bottom to top in RFC order.
	if len(samples) > 0 {
		lower := make([]float64, len(samples))
		for _, st := range shown {
			upper := make([]float64, len(samples))
			var b bytes.Buffer
			for i, s := range samples {
				upper[i] = lower[i] + float64(s.Counts[st])
				fmt.Fprintf(&b, "%.1f,%.1f ", x(s.T), y(upper[i]))
			}
			for i := len(samples) - 1; i >= 0; i-- {
				fmt.Fprintf(&b, "%.1f,%.1f ", x(samples[i].T), y(lower[i]))
			}
			p(`<polygon points="%s" fill="%s" fill-opacity="0.85" stroke="%s" stroke-width="0.5"><title>%s</title></polygon>`+"\n",
				bytes.TrimSpace(b.Bytes()), timelineColours[st], timelineColours[st], xmlText(st.String()))
			lower = upper
		}
	}
	// Axes and labels.
	p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top, left, top+ph)
	p(`<text x="%.1f" y="%.1f" text-anchor="middle">seconds since %s</text>`+"\n", left+pw/2, height-18,
		xmlText(t0.UTC().Format("2006-01-02 15:04:05.000 UTC")))
	p(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">endpoints in the state</text>`+"\n", top+ph/2)
	// Legend, top state first as in the stack.
	lx, ly := left+pw+20, top+10
	p(`<text x="%.1f" y="%.1f" font-weight="bold">state</text>`+"\n", lx, ly)
	for i := len(shown) - 1; i >= 0; i-- {
		st := shown[i]
		ly += 20
		p(`<rect x="%.1f" y="%.1f" width="14" height="14" fill="%s"/>`+"\n", lx, ly-11, timelineColours[st])
		p(`<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+20, ly, xmlText(st.String()))
	}
	if len(shown) == 0 {
		p(`<text x="%.1f" y="%.1f">no open connections</text>`+"\n", lx, ly+20)
	}
	p("</svg>\n")
	return bw.Flush()
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}
