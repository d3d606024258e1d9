package trace

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/tcpstate/tcpstate/tcp"
)

// DiagramKey names one edge of the state diagram: a change from one state
// to another, and what drove it. Counts of transitions taken are keyed by
// it.
type DiagramKey struct {
	From, To tcp.State
	Trigger  tcp.Trigger
}

// UnknownTrigger is the Trigger of a counted transition whose cause could
// not be read (ParseCause failed). Such transitions are still counted and
// drawn, in the list of transitions the diagram has no edge for.
const UnknownTrigger tcp.Trigger = 255

// DiagramOptions configures DiagramSVG and DiagramDOT.
type DiagramOptions struct {
	// Title is written over the figure. Default: "TCP connection state
	// diagram (RFC 9293, Figure 5)".
	Title string
}

func (o DiagramOptions) title() string {
	if o.Title != "" {
		return o.Title
	}
	return "TCP connection state diagram (RFC 9293, Figure 5)"
}

// ParseCause classifies a state change by what drove it, from the change's
// states and its cause as tcp.Cause.String writes it and Record.Cause
// holds it: "rcv SYN,ACK" (an arriving segment's flags), "CLOSE" (a user
// call), "timeout 2MSL" (a timer). The classification is tcp.TriggerOf's,
// so a trace's transitions land on the same edges of tcp.Edges as the
// live events did.
func ParseCause(from, to tcp.State, cause string) (tcp.Trigger, error) {
	e := tcp.Event{Type: tcp.EventState, From: from, To: to}
	switch {
	case strings.HasPrefix(cause, "rcv "):
		f, err := ParseFlags(strings.TrimPrefix(cause, "rcv "))
		if err != nil {
			return UnknownTrigger, fmt.Errorf("trace: cause %q: %w", cause, err)
		}
		e.Cause = tcp.Cause{Kind: tcp.CauseSegment, Segment: tcp.SegmentInfo{Flags: f}}
	case strings.HasPrefix(cause, "timeout "):
		name := strings.TrimPrefix(cause, "timeout ")
		t, ok := timerByName(name)
		if !ok {
			return UnknownTrigger, fmt.Errorf("trace: cause %q: unknown timer %q", cause, name)
		}
		e.Cause = tcp.Cause{Kind: tcp.CauseTimer, Timer: t}
	default:
		c, ok := callByName(cause)
		if !ok {
			return UnknownTrigger, fmt.Errorf("trace: unknown cause %q (want \"rcv FLAGS\", \"timeout TIMER\" or a user call)", cause)
		}
		e.Cause = tcp.Cause{Kind: tcp.CauseCall, Call: c}
	}
	return tcp.TriggerOf(&e), nil
}

func timerByName(name string) (tcp.Timer, bool) {
	for t := tcp.Timer(0); t < 32; t++ {
		s := t.String()
		if strings.HasPrefix(s, "Timer(") {
			break
		}
		if s == name {
			return t, true
		}
	}
	return 0, false
}

func callByName(name string) (tcp.Call, bool) {
	for c := tcp.Call(0); c < 32; c++ {
		s := c.String()
		if strings.HasPrefix(s, "Call(") {
			break
		}
		if s == name {
			return c, true
		}
	}
	return 0, false
}

// CountTransitions counts the state changes (KindState records) in recs by
// edge. A change whose cause ParseCause cannot read is counted under
// UnknownTrigger rather than dropped.
func CountTransitions(recs []Record) map[DiagramKey]uint64 {
	counts := map[DiagramKey]uint64{}
	for i := range recs {
		r := &recs[i]
		if r.Kind != KindState {
			continue
		}
		trig, _ := ParseCause(r.From, r.To, r.Cause)
		counts[DiagramKey{r.From, r.To, trig}]++
	}
	return counts
}

// diagramBox is a state's place in the figure: its centre. CLOSED is drawn
// twice, as RFC 9293 Figure 5 draws it: on top, where connections begin,
// and as a bar along the bottom, where they end.
type diagramBox struct {
	x, y float64
}

// The figure's grid, after RFC 9293 Figure 5: CLOSED on top, LISTEN under
// it, SYN-RECEIVED left and SYN-SENT right, ESTABLISHED in the middle, the
// active closer's states down the left (FIN-WAIT-1, FIN-WAIT-2), CLOSING
// and TIME-WAIT in the middle, the passive closer's on the right
// (CLOSE-WAIT, LAST-ACK), and CLOSED again at the bottom.
const (
	dgW      = 1760.0
	dgL      = 360.0
	dgC      = 850.0
	dgR      = 1340.0
	dgY0     = 110.0
	dgY1     = 290.0
	dgY2     = 480.0
	dgY3     = 680.0
	dgY4     = 870.0
	dgY5     = 1060.0
	dgY6     = 1220.0
	dgBarY   = 1390.0
	dgBoxW   = 150.0
	dgBoxH   = 44.0
	dgBarX0  = 60.0
	dgBarX1  = dgW - 60
	dgLabelF = 12.0
	dgLineH  = 16.0
)

var diagramBoxes = map[tcp.State]diagramBox{
	tcp.Closed:      {dgC, dgY0},
	tcp.Listen:      {dgC, dgY1},
	tcp.SynReceived: {dgL, dgY2},
	tcp.SynSent:     {dgR, dgY2},
	tcp.Established: {dgC, dgY3},
	tcp.FinWait1:    {dgL, dgY4},
	tcp.CloseWait:   {dgR, dgY4},
	tcp.FinWait2:    {dgL, dgY5},
	tcp.Closing:     {dgC, dgY5},
	tcp.LastAck:     {dgR, dgY5},
	tcp.TimeWait:    {dgC, dgY6},
}

type pt struct{ x, y float64 }

// diagramRoute is the hand-placed path of the arrow for every edge from
// one state to another, and where its labels go: lx, ly is the first
// label line's anchor, anchor its text-anchor; up stacks the lines upward
// from there. short labels the edges with their trigger's name, the full
// labels going to the table under the figure (the drops to the bottom bar,
// where there is no room).
type diagramRoute struct {
	from, to tcp.State
	pts      []pt
	lx, ly   float64
	anchor   string
	up       bool
	short    bool
}

const (
	bt = dgBoxH / 2 // half a box's height
	bw = dgBoxW / 2 // half a box's width
)

var diagramRoutes = []diagramRoute{
	{tcp.Closed, tcp.Listen, []pt{{dgC - 35, dgY0 + bt}, {dgC - 35, dgY1 - bt}}, dgC - 45, (dgY0+dgY1)/2 + 4, "end", false, false},
	{tcp.Listen, tcp.Closed, []pt{{dgC + 35, dgY1 - bt}, {dgC + 35, dgY0 + bt}}, dgC + 45, (dgY0+dgY1)/2 - 4, "start", false, false},
	{tcp.Closed, tcp.SynSent, []pt{{dgC + bw, dgY0 - 10}, {dgR - 30, dgY0 - 10}, {dgR - 30, dgY2 - bt}}, dgR - 40, dgY0 - 18, "end", false, false},
	{tcp.SynSent, tcp.Closed, []pt{{dgR + 30, dgY2 - bt}, {dgR + 30, dgY0 + 10}, {dgC + bw, dgY0 + 10}}, dgR + 40, dgY0 + 50, "start", false, false},
	{tcp.Listen, tcp.SynSent, []pt{{dgC + bw, dgY1}, {dgR - 60, dgY1}, {dgR - 60, dgY2 - bt}}, (dgC + bw + dgR - 60) / 2, dgY1 - 8, "middle", false, false},
	{tcp.Listen, tcp.SynReceived, []pt{{dgC - bw, dgY1 + 10}, {dgL + 35, dgY1 + 10}, {dgL + 35, dgY2 - bt}}, dgL + 45, dgY1 + 30, "start", false, false},
	{tcp.SynReceived, tcp.Listen, []pt{{dgL - 35, dgY2 - bt}, {dgL - 35, dgY1 - 10}, {dgC - bw, dgY1 - 10}}, dgL - 25, dgY1 - 18, "start", true, false},
	{tcp.SynReceived, tcp.Closed, []pt{{dgL - bw, dgY2}, {dgL - 140, dgY2}, {dgL - 140, dgY0}, {dgC - bw, dgY0}}, dgL - 130, dgY0 + 30, "start", false, false},
	{tcp.SynSent, tcp.SynReceived, []pt{{dgR - bw, dgY2 + 10}, {dgL + bw, dgY2 + 10}}, dgC, dgY2 + 28, "middle", false, false},
	{tcp.SynReceived, tcp.Established, []pt{{dgL + 35, dgY2 + bt}, {dgL + 35, dgY3 - 60}, {dgC - 35, dgY3 - 60}, {dgC - 35, dgY3 - bt}}, dgL + 45, dgY3 - 68, "start", false, false},
	{tcp.SynSent, tcp.Established, []pt{{dgR - 35, dgY2 + bt}, {dgR - 35, dgY3 - 60}, {dgC + 35, dgY3 - 60}, {dgC + 35, dgY3 - bt}}, dgR - 45, dgY3 - 68, "end", false, false},
	{tcp.SynReceived, tcp.FinWait1, []pt{{dgL - 35, dgY2 + bt}, {dgL - 35, dgY4 - bt}}, dgL - 45, (dgY2+dgY4)/2 + 4, "end", false, false},
	{tcp.Established, tcp.FinWait1, []pt{{dgC - bw, dgY3 + 5}, {dgL + 45, dgY3 + 5}, {dgL + 45, dgY4 - bt}}, dgL + 55, dgY3 + 25, "start", false, false},
	{tcp.Established, tcp.CloseWait, []pt{{dgC + bw, dgY3 + 5}, {dgR - 45, dgY3 + 5}, {dgR - 45, dgY4 - bt}}, dgR - 55, dgY3 + 25, "end", false, false},
	{tcp.FinWait1, tcp.FinWait2, []pt{{dgL, dgY4 + bt}, {dgL, dgY5 - bt}}, dgL + 10, (dgY4+dgY5)/2 + 4, "start", false, false},
	{tcp.FinWait1, tcp.Closing, []pt{{dgL + bw, dgY4 - 8}, {dgC - 20, dgY4 - 8}, {dgC - 20, dgY5 - bt}}, dgC - 30, dgY4 - 16, "end", false, false},
	{tcp.FinWait1, tcp.TimeWait, []pt{{dgL + bw, dgY4 + 12}, {dgL + 150, dgY4 + 12}, {dgL + 150, dgY6 - 10}, {dgC - bw, dgY6 - 10}}, dgL + 160, dgY4 + 42, "start", false, false},
	{tcp.FinWait2, tcp.TimeWait, []pt{{dgL + 35, dgY5 + bt}, {dgL + 35, dgY6 + 10}, {dgC - bw, dgY6 + 10}}, dgL + 45, dgY6 + 28, "start", false, false},
	{tcp.CloseWait, tcp.LastAck, []pt{{dgR, dgY4 + bt}, {dgR, dgY5 - bt}}, dgR - 10, (dgY4+dgY5)/2 + 4, "end", false, false},
	{tcp.Closing, tcp.TimeWait, []pt{{dgC - 20, dgY5 + bt}, {dgC - 20, dgY6 - bt}}, dgC - 30, (dgY5+dgY6)/2 + 4, "end", false, false},

	// To the bar at the bottom.
	{tcp.FinWait1, tcp.Closed, []pt{{dgL - bw, dgY4}, {dgL - 150, dgY4}, {dgL - 150, dgBarY - bt}}, dgL - 156, dgBarY - bt - 8, "end", true, true},
	{tcp.FinWait2, tcp.Closed, []pt{{dgL - 35, dgY5 + bt}, {dgL - 35, dgBarY - bt}}, dgL - 29, dgBarY - bt - 8, "start", true, true},
	{tcp.TimeWait, tcp.Closed, []pt{{dgC - 30, dgY6 + bt}, {dgC - 30, dgBarY - bt}}, dgC - 36, dgBarY - bt - 8, "end", true, true},
	{tcp.Closing, tcp.Closed, []pt{{dgC + bw, dgY5 + 10}, {dgC + 120, dgY5 + 10}, {dgC + 120, dgBarY - bt}}, dgC + 126, dgY5 + 50, "start", false, true},
	{tcp.Established, tcp.Closed, []pt{{dgC + 50, dgY3 + bt}, {dgC + 50, dgY3 + 70}, {dgC + 320, dgY3 + 70}, {dgC + 320, dgBarY - bt}}, dgC + 314, dgY3 + 100, "end", false, true},
	{tcp.LastAck, tcp.Closed, []pt{{dgR, dgY5 + bt}, {dgR, dgBarY - bt}}, dgR + 6, dgBarY - bt - 8, "start", true, true},
	{tcp.CloseWait, tcp.Closed, []pt{{dgR + bw, dgY4}, {dgR + 200, dgY4}, {dgR + 200, dgBarY - bt}}, dgR + 206, dgY4 + 30, "start", false, true},
}

// diagramPair gathers the edges of tcp.Edges that share a route.
type diagramPair struct {
	route *diagramRoute
	edges []tcp.Edge
	total uint64
}

func diagramPairs(counts map[DiagramKey]uint64) []*diagramPair {
	var pairs []*diagramPair
	byKey := map[[2]tcp.State]*diagramPair{}
	for i := range diagramRoutes {
		p := &diagramPair{route: &diagramRoutes[i]}
		pairs = append(pairs, p)
		byKey[[2]tcp.State{p.route.from, p.route.to}] = p
	}
	for _, e := range tcp.Edges {
		p := byKey[[2]tcp.State{e.From, e.To}]
		if p == nil {
			continue // every edge has a route; TestDiagramRoutes checks
		}
		p.edges = append(p.edges, e)
		p.total += counts[DiagramKey{e.From, e.To, e.Trigger}]
	}
	return pairs
}

// extraTransitions lists the counted transitions tcp.Edges has no edge
// for, most taken first.
func extraTransitions(counts map[DiagramKey]uint64) []DiagramKey {
	known := map[DiagramKey]bool{}
	for _, e := range tcp.Edges {
		known[DiagramKey{e.From, e.To, e.Trigger}] = true
	}
	var out []DiagramKey
	for k, n := range counts {
		if n > 0 && !known[k] {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b DiagramKey) int {
		if counts[a] != counts[b] {
			if counts[a] > counts[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(keyString(a), keyString(b))
	})
	return out
}

func keyString(k DiagramKey) string {
	trig := k.Trigger.String()
	if k.Trigger == UnknownTrigger {
		trig = "unrecognised cause"
	}
	return k.From.String() + " -> " + k.To.String() + " on " + trig
}

// Diagram colours.
const (
	dgInk   = "#1d3f8c"
	dgTaken = "#c2410c"
	dgIdle  = "#b8bec6"
	dgText  = "#222222"
)

// DiagramSVG draws the TCP connection state diagram of RFC 9293 Figure 5,
// with every edge of tcp.Edges, as a standalone SVG. The states sit where
// the RFC's figure puts them; the edges between two states share one
// arrow, routed around the boxes, with one label line per edge (event /
// action). CLOSED is drawn on top, where connections begin, and as a bar
// along the bottom, where open connections end; the drops to that bar
// carry each edge's trigger, and a table under the figure gives their full
// labels.
//
// counts, when not nil, are the times each edge was taken: each label
// line ends with its count, an arrow's thickness grows with its edges'
// total (logarithmically), taken edges are drawn in orange and untaken
// ones greyed. Transitions counted that tcp.Edges does not have are
// listed under the figure with their counts.
func DiagramSVG(w io.Writer, counts map[DiagramKey]uint64, opt DiagramOptions) error {
	out := bufio.NewWriter(w)
	s := &svgWriter{w: out}
	pairs := diagramPairs(counts)
	extras := extraTransitions(counts)
	var maxN uint64
	for _, p := range pairs {
		maxN = max(maxN, p.total)
	}

	// The table of the bottom bar's edges, and the extras, under the figure.
	type tableRow struct {
		text  string
		n     uint64
		taken bool
	}
	var table []tableRow
	for _, p := range pairs {
		if !p.route.short {
			continue
		}
		for _, e := range p.edges {
			n := counts[DiagramKey{e.From, e.To, e.Trigger}]
			table = append(table, tableRow{e.From.String() + " → CLOSED: " + e.Label, n, n > 0})
		}
	}
	half := (len(table) + 1) / 2
	tableY := dgBarY + 70
	height := tableY + float64(half)*dgLineH + 30
	if len(extras) > 0 {
		height += 40 + float64(len(extras))*dgLineH
	}
	s.open(dgW, height, opt.title())
	s.printf("<defs>\n")
	s.arrowMarker("d-ink", dgInk)
	s.arrowMarker("d-taken", dgTaken)
	s.arrowMarker("d-idle", dgIdle)
	s.printf("</defs>\n")
	s.text(dgW/2, 34, `text-anchor="middle" font-size="20" font-weight="bold" fill="`+dgText+`"`, opt.title())
	if counts != nil {
		s.text(dgW/2, 56, `text-anchor="middle" font-size="13" fill="#555555"`,
			"×N: times the edge was taken; thicker orange arrows were taken more, grey ones not at all")
	}

	// Arrows first, so the boxes and labels sit on top of them.
	for _, p := range pairs {
		colour, marker, width := dgInk, "d-ink", 1.6
		if counts != nil {
			if p.total > 0 {
				colour, marker = dgTaken, "d-taken"
				width = 1.8 + 4.2*math.Log1p(float64(p.total))/math.Log1p(float64(max(maxN, 1)))
			} else {
				colour, marker = dgIdle, "d-idle"
			}
		}
		var d strings.Builder
		for i, q := range p.route.pts {
			if i == 0 {
				d.WriteString("M")
			} else {
				d.WriteString(" L")
			}
			d.WriteString(num(q.x) + "," + num(q.y))
		}
		s.printf("<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" stroke-linejoin=\"round\" marker-end=\"url(#%s)\"/>\n",
			d.String(), colour, num(width), marker)
	}

	// The states.
	for st := tcp.State(0); int(st) < tcp.NumStates; st++ {
		b, ok := diagramBoxes[st]
		if !ok {
			continue
		}
		s.rect(b.x-bw, b.y-bt, dgBoxW, dgBoxH, 8, `fill="#eef3fb" stroke="`+dgInk+`" stroke-width="2"`)
		s.text(b.x, b.y+5, `text-anchor="middle" font-size="15" font-weight="bold" fill="`+dgInk+`"`, st.String())
	}
	s.rect(dgBarX0, dgBarY-bt, dgBarX1-dgBarX0, dgBoxH, 8, `fill="#eef3fb" stroke="`+dgInk+`" stroke-width="2"`)
	s.text(dgBarX1-20, dgBarY+5, `text-anchor="end" font-size="15" font-weight="bold" fill="`+dgInk+`"`, tcp.Closed.String())

	// The labels, each on a white halo so that lines passing under stay
	// readable.
	for _, p := range pairs {
		r := p.route
		for i, e := range p.edges {
			n := counts[DiagramKey{e.From, e.To, e.Trigger}]
			text := e.Label
			if r.short {
				text = e.Trigger.String()
			}
			if counts != nil {
				text += fmt.Sprintf("  ×%d", n)
			}
			k := float64(i)
			if r.up {
				k = float64(len(p.edges) - 1 - i)
				k = -k
			}
			fill := dgText
			weight := ""
			if counts != nil {
				if n > 0 {
					fill, weight = dgTaken, ` font-weight="bold"`
				} else {
					fill = "#8a9099"
				}
			}
			s.text(r.lx, r.ly+k*dgLineH, `text-anchor="`+r.anchor+`" font-size="12" fill="`+fill+`"`+weight+
				` stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"`, text)
		}
	}

	// The bottom bar's edges in full, in two columns.
	s.text(dgBarX0, tableY-22, `font-size="13" font-weight="bold" fill="`+dgText+`"`, "Edges to the CLOSED bar, in full:")
	for i, row := range table {
		x := dgBarX0
		y := tableY + float64(i)*dgLineH
		if i >= half {
			x = dgW / 2
			y = tableY + float64(i-half)*dgLineH
		}
		text := row.text
		fill := dgText
		if counts != nil {
			text += fmt.Sprintf("  ×%d", row.n)
			fill = "#8a9099"
			if row.taken {
				fill = dgTaken
			}
		}
		s.text(x, y, `font-size="12" fill="`+fill+`"`, text)
	}
	if len(extras) > 0 {
		y := tableY + float64(half)*dgLineH + 30
		s.text(dgBarX0, y, `font-size="13" font-weight="bold" fill="#c92a2a"`, "Transitions taken that the diagram has no edge for:")
		for i, k := range extras {
			s.text(dgBarX0, y+float64(i+1)*dgLineH+4, `font-size="12" fill="#c92a2a"`, fmt.Sprintf("%s  ×%d", keyString(k), counts[k]))
		}
	}
	s.close()
	return out.Flush()
}

// DiagramDOT writes the same diagram as DiagramSVG in Graphviz's DOT
// language, for people who want Graphviz to lay it out: one node per
// state, one edge per edge of tcp.Edges labelled with its event / action
// and, with counts, how often it was taken (pen width grows with the
// count, untaken edges grey). Transitions counted that tcp.Edges lacks are
// added as red dashed edges.
func DiagramDOT(w io.Writer, counts map[DiagramKey]uint64, opt DiagramOptions) error {
	out := bufio.NewWriter(w)
	fmt.Fprintf(out, "digraph tcp {\n")
	fmt.Fprintf(out, "  label=%s;\n  labelloc=t;\n  fontname=\"Helvetica\";\n", dotQuote(opt.title()))
	fmt.Fprintf(out, "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", color=\"%s\", fontname=\"Helvetica-Bold\"];\n", dgInk)
	fmt.Fprintf(out, "  edge [fontname=\"Helvetica\", fontsize=10];\n")
	for st := tcp.State(0); int(st) < tcp.NumStates; st++ {
		fmt.Fprintf(out, "  %s;\n", dotQuote(st.String()))
	}
	// The RFC's rows.
	for _, row := range [][]tcp.State{
		{tcp.SynReceived, tcp.SynSent},
		{tcp.FinWait1, tcp.CloseWait},
		{tcp.FinWait2, tcp.Closing, tcp.LastAck},
	} {
		fmt.Fprintf(out, "  { rank=same;")
		for _, st := range row {
			fmt.Fprintf(out, " %s;", dotQuote(st.String()))
		}
		fmt.Fprintf(out, " }\n")
	}
	var maxN uint64
	for _, n := range counts {
		maxN = max(maxN, n)
	}
	for _, e := range tcp.Edges {
		n := counts[DiagramKey{e.From, e.To, e.Trigger}]
		label := e.Label
		attrs := ""
		if counts != nil {
			label += fmt.Sprintf(" ×%d", n)
			if n > 0 {
				attrs = fmt.Sprintf(", color=%q, fontcolor=%q, penwidth=%.2f", dgTaken, dgTaken,
					1+4*math.Log1p(float64(n))/math.Log1p(float64(max(maxN, 1))))
			} else {
				attrs = fmt.Sprintf(", color=%q, fontcolor=%q", dgIdle, "#8a9099")
			}
		}
		fmt.Fprintf(out, "  %s -> %s [label=%s%s];\n", dotQuote(e.From.String()), dotQuote(e.To.String()), dotQuote(label), attrs)
	}
	for _, k := range extraTransitions(counts) {
		trig := k.Trigger.String()
		if k.Trigger == UnknownTrigger {
			trig = "unrecognised cause"
		}
		fmt.Fprintf(out, "  %s -> %s [label=%s, style=dashed, color=\"#c92a2a\", fontcolor=\"#c92a2a\"];\n",
			dotQuote(k.From.String()), dotQuote(k.To.String()), dotQuote(fmt.Sprintf("%s (not in the diagram) ×%d", trig, counts[k])))
	}
	fmt.Fprintf(out, "}\n")
	return out.Flush()
}

// dotQuote writes s as a DOT quoted string: backslashes and quotes
// escaped, line breaks as \n.
func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
