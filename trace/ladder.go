package trace

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/tcpstate/tcpstate/tcp"
)

// LadderOptions configures Ladder.
type LadderOptions struct {
	// Left and Right name the hosts of the two columns. Empty: the first
	// two hosts the records mention, in order.
	Left, Right string
	// Width is the widest line drawn, in columns. Default 100; at least
	// 80 is sensible.
	Width int
	// NoExplain leaves out the plain-words line under each step.
	NoExplain bool
}

// Ladder draws recs as a ladder diagram in text, in the manner of RFC
// 9293's examples: time and state of the left host, the segments between
// the hosts as arrows carrying flags, seq, ack, len and window, and state
// and time of the right host. A segment that arrives before anything else
// happens is one arrow; one that crosses other events is drawn where it
// leaves ("...") and again where it arrives. A lost packet's arrow ends in
// an X half way, a corrupted one's at the receiver. Timer expiries and
// calls that send nothing get a line of their own, notes a line in the
// margin. Under each step a line explains it in plain words.
//
// Records of hosts other than the two columns' are left out.
func Ladder(w io.Writer, recs []Record, opt LadderOptions) error {
	l := layoutLadder(recs, opt)
	bw := bufio.NewWriter(w)
	l.render(bw)
	return bw.Flush()
}

// layoutLadder turns recs into the ladder's lines: the layout model that
// the text renderer (Ladder) and the SVG renderer (LadderSVG) both draw.
func layoutLadder(recs []Record, opt LadderOptions) *ladder {
	l := newLadder(recs, opt)
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Step == recs[i].Step {
			j++
		}
		l.group(recs[i:j])
		i = j
	}
	return l
}

// fate is what became of the packet an arrow stands for, as far as the
// diagram knows when it draws the line.
type fate uint8

const (
	fateNone           fate = iota // not a packet: a timer, call or note line
	fateInFlight                   // sent; arrives on a later line, or never
	fateDelivered                  // sent and arrived on this line
	fateLost                       // sent and lost on the way
	fateCorrupt                    // sent, arrived damaged, dropped on this line
	fateArrival                    // arrives here; sent on an earlier line
	fateArrivalCorrupt             // arrives damaged; sent on an earlier line
)

// frag is one piece of a line's explanation: what host did; host "" is the
// network.
type frag struct {
	host, s string
}

type ladderLine struct {
	side  int // the side that acts: sender, receiver of an arrival, or the side of an event
	dir   int // +1 left to right, -1 right to left, 0 no arrow
	t     [2]time.Duration
	hasT  [2]bool
	st    [2]string
	label string
	fate  fate
	tag   string      // the words of a line without an arrow
	timer bool        // the line is a timer's expiry (tag names it)
	retx  bool        // the segment is a retransmission
	src   *ladderLine // for an arrival: the line its packet was sent on, if drawn
	note  string      // a note line
	text  []frag
}

type ladder struct {
	opt       LadderOptions
	names     [2]string
	addrs     [2]netip.Addr
	known     [2]bool // the records say the side's state; a peer seen from one side does not
	cur       [2]string
	lines     []*ladderLine
	sent      map[uint64]*ladderLine
	arrived   map[uint64]int
	explained map[string]bool
	lastIn    [2]tcp.SegmentInfo // the latest segment each side received
	delAck    [2]bool            // each side's delayed-ACK timer is running
	started   bool
	t0        time.Duration
}

func newLadder(recs []Record, opt LadderOptions) *ladder {
	if opt.Width <= 0 {
		opt.Width = 100
	}
	l := &ladder{
		opt:       opt,
		names:     [2]string{opt.Left, opt.Right},
		cur:       [2]string{"CLOSED", "CLOSED"},
		sent:      map[uint64]*ladderLine{},
		arrived:   map[uint64]int{},
		explained: map[string]bool{},
	}
	for i := range recs {
		h := recs[i].Host
		if h == "" || h == l.names[0] || h == l.names[1] {
			continue
		}
		if l.names[0] == "" {
			l.names[0] = h
		} else if l.names[1] == "" {
			l.names[1] = h
		}
	}
	var seen [2]bool
	for i := range recs {
		r := &recs[i]
		s := l.side(r.Host)
		if s < 0 {
			continue
		}
		switch {
		case r.Kind == KindHost:
			l.addrs[s] = r.Addr
		case r.Kind == KindListen:
			l.known[s] = true
		case r.HasState || r.Kind == KindState:
			l.known[s] = true
			// The state before the first record: a change's From, or the
			// state a record reports (calls and arrivals report the state
			// they found). A trace that begins mid-connection starts there.
			if !seen[s] {
				seen[s] = true
				if r.Kind == KindState {
					l.cur[s] = r.From.String()
				} else {
					l.cur[s] = r.State.String()
				}
			}
		}
	}
	// A side whose records never say its state (the peer of a one-sided
	// trace, see WithPeer) has no state column: blank, never a guess.
	for s := range 2 {
		if !l.known[s] {
			l.cur[s] = ""
		}
	}
	return l
}

func (l *ladder) side(host string) int {
	switch {
	case host == "":
		return -1
	case host == l.names[0]:
		return 0
	case host == l.names[1]:
		return 1
	}
	return -1
}

// group turns the records of one step into lines.
func (l *ladder) group(g []Record) {
	var (
		pending  []frag        // what happened before anything was drawn
		arrival  *ladderLine   // the line a delivered packet lands on
		lastSend *ladderLine   // the latest send line of this step
		open     []*ladderLine // lines whose state columns are not yet set
		evSide   = -1          // the side of a step that draws no arrow
		evTag    string
		evT      time.Duration
		evTimer  bool   // the step is a timer's expiry
		fired    string // the timer that expired in this step, until a send shows it
		firedAt  = -1   // the side whose timer that is
		delivery bool   // the step is a packet's arrival
	)
	for i := range g {
		switch g[i].Kind {
		case KindSegmentIn, KindBadPacket, KindUnreachable:
			delivery = true
		}
	}
	// A line shows the states as they are once its part of the step is
	// over: when the next line starts, when the application or a timer
	// acts next, or when the step ends.
	finalize := func() {
		for _, ln := range open {
			ln.st = l.cur
		}
		open = open[:0]
	}
	add := func(ln *ladderLine) {
		finalize()
		l.lines = append(l.lines, ln)
		open = append(open, ln)
	}
	explainState := func(r *Record) string {
		s := r.From.String() + " -> " + r.To.String()
		if name := r.To.String(); !l.explained[name] {
			l.explained[name] = true
			if m := StateMeaning(r.To); m != "" {
				s += " (" + m + ")"
			}
		}
		return s
	}
	for i := range g {
		r := &g[i]
		if r.Kind == KindNote {
			l.start(r.T)
			l.lines = append(l.lines, &ladderLine{note: r.Text, t: [2]time.Duration{r.T}, hasT: [2]bool{true}})
			continue
		}
		s := l.side(r.Host)
		if s < 0 {
			continue
		}
		switch r.Kind {
		case KindHost:
			continue
		case KindListen:
			if l.cur[s] == "CLOSED" {
				l.cur[s] = "LISTEN"
			}
			continue
		}
		l.start(r.T)
		if r.HasState {
			l.cur[s] = r.State.String()
		}
		switch r.Kind {
		case KindSegmentIn, KindBadPacket, KindUnreachable:
			if r.Kind == KindSegmentIn {
				l.lastIn[s] = r.Seg
			}
			finalize()
			arrival = l.arrive(r, s)
			open = append(open, arrival)
			switch r.Kind {
			case KindBadPacket:
				arrival.text = append(arrival.text, frag{r.Host, "the checksum fails: dropped"})
			case KindUnreachable:
				arrival.text = append(arrival.text, frag{"", linkPhrase(r)})
			}
		case KindState:
			if delivery && r.From == tcp.Closed && r.To == tcp.Listen {
				continue // a listener's connection for the arriving SYN
			}
			f := frag{r.Host, explainState(r)}
			if why := endPhrase(r); why != "" {
				f.s += ": " + why
			}
			switch {
			case arrival != nil:
				arrival.text = append(arrival.text, f)
			case lastSend != nil && lastSend.side == s:
				lastSend.text = append(lastSend.text, f)
				continue
			default:
				pending = append(pending, f)
			}
			if evSide < 0 || evSide == s {
				evSide, evT = s, r.T
			}
		case KindTimerSet:
			p := timerSetPhrase(r)
			if r.Timer == tcp.TimerDelayedAck.String() {
				if l.delAck[s] {
					p = "" // already holding an ACK back: nothing new
				}
				l.delAck[s] = true
			}
			if p == "" {
				continue
			}
			f := frag{r.Host, p}
			switch {
			case arrival != nil:
				arrival.text = append(arrival.text, f)
			case lastSend != nil && lastSend.side == s:
				lastSend.text = append(lastSend.text, f)
			default:
				pending = append(pending, f)
			}
		case KindDrop:
			f := frag{r.Host, dropPhrase(r)}
			if arrival != nil {
				arrival.text = append(arrival.text, f)
			} else {
				pending = append(pending, f)
			}
		case KindCall:
			finalize()
			arrival, lastSend = nil, nil // what follows is the application's doing
			if p := callPhrase(r.Call); p != "" && r.Call != "passive OPEN" {
				pending = append(pending, frag{r.Host, p})
				evSide, evTag, evT = s, r.Call, r.T
				evTimer = false
			}
		case KindTimerStopped:
			if r.Timer == tcp.TimerDelayedAck.String() {
				l.delAck[s] = false
			}
		case KindTimerFired:
			if r.Timer == tcp.TimerDelayedAck.String() {
				l.delAck[s] = false
			}
			finalize()
			arrival, lastSend = nil, nil
			pending = append(pending, frag{r.Host, timerPhrase(r.Timer)})
			evSide, evTag, evT = s, r.Timer+" timer expires", r.T
			evTimer = true
			fired, firedAt = r.Timer+" timer expires", s
		case KindSegmentOut, KindInject:
			if !r.HasSeg {
				continue
			}
			ln := &ladderLine{side: s, dir: 1 - 2*s, label: segmentLabel(r.Seg), fate: fateInFlight, retx: r.Retransmit}
			ln.t[s], ln.hasT[s] = r.T, true
			ln.text = append(ln.text, pending...)
			pending = nil
			if r.Kind == KindInject {
				what := "a crafted segment is put on the wire"
				if r.Text != "" {
					what = r.Text
				}
				ln.text = append(ln.text, frag{"", what})
			} else {
				ln.text = append(ln.text, frag{r.Host, sendPhrase(r, l.lastIn[s])})
				if p := optionsPhrase(r.Opts); p != "" {
					ln.text = append(ln.text, frag{r.Host, p})
				}
			}
			if fired != "" && firedAt == s {
				// The send the expiry caused carries its mark (LadderSVG
				// draws it; the text says it in the explanation).
				ln.timer, ln.tag, fired = true, fired, ""
			}
			lastSend = ln
			if r.Pkt != 0 {
				l.sent[r.Pkt] = ln
			}
			add(ln)
		case KindLost, KindFiltered, KindQueueFull, KindNoRoute, KindCorrupted,
			KindDuplicated, KindReordered, KindDelayed:
			ln := l.sent[r.Pkt]
			if ln == nil {
				continue
			}
			switch r.Kind {
			case KindLost, KindFiltered, KindQueueFull, KindNoRoute:
				ln.fate = fateLost
			}
			ln.text = append(ln.text, frag{"", linkPhrase(r)})
		}
	}
	if len(pending) > 0 {
		if arrival != nil {
			arrival.text = append(arrival.text, pending...)
		} else if evSide >= 0 {
			ln := &ladderLine{side: evSide, tag: evTag, timer: evTimer && evTag != "", text: pending}
			ln.t[evSide], ln.hasT[evSide] = evT, true
			add(ln)
		}
	}
	finalize()
}

// arrive finds or makes the line a packet lands on at side s.
func (l *ladder) arrive(r *Record, s int) *ladderLine {
	n := l.arrived[r.Pkt]
	if r.Pkt != 0 {
		l.arrived[r.Pkt] = n + 1
	}
	corrupt := r.Kind == KindBadPacket
	if ln := l.sent[r.Pkt]; ln != nil && r.Pkt != 0 && n == 0 && ln.fate == fateInFlight &&
		ln.side != s && l.lines[len(l.lines)-1] == ln {
		ln.fate = fateDelivered
		if corrupt {
			ln.fate = fateCorrupt
		}
		ln.t[s], ln.hasT[s] = r.T, true
		return ln
	}
	ln := &ladderLine{side: s, dir: 2*s - 1, fate: fateArrival}
	if src := l.sent[r.Pkt]; r.Pkt != 0 && src != nil && src.side != s {
		ln.src, ln.retx = src, src.retx
	}
	if corrupt {
		ln.fate = fateArrivalCorrupt
	}
	switch {
	case r.HasSeg:
		ln.label = segmentLabel(r.Seg)
	case l.sent[r.Pkt] != nil:
		ln.label = l.sent[r.Pkt].label
	}
	ln.t[s], ln.hasT[s] = r.T, true
	if n > 0 {
		ln.text = append(ln.text, frag{"", "a duplicate copy arrives"})
	}
	l.lines = append(l.lines, ln)
	return ln
}

// start notes the time of the first drawn event, for the opening line.
func (l *ladder) start(t time.Duration) {
	if !l.started {
		l.started = true
		l.t0 = t
		l.lines = append(l.lines, &ladderLine{st: l.cur, t: [2]time.Duration{t, t}, hasT: [2]bool{true, true}, side: -1})
	}
}

const (
	timeW  = 8
	stateW = 12
)

func (l *ladder) arrowWidth() int {
	return max(l.opt.Width-2*timeW-2*stateW-6, 30)
}

func (l *ladder) render(w *bufio.Writer) {
	aw := l.arrowWidth()
	// Header: the hosts' names and addresses over their columns.
	head := func(i int) string {
		s := l.names[i]
		if l.addrs[i].IsValid() {
			s += " " + l.addrs[i].String()
		}
		return s
	}
	left, right := head(0), head(1)
	gap := stateW + 1 + aw + 1 + stateW - len(left) - len(right)
	fmt.Fprintf(w, "%*s %s%s%s %*s\n", timeW, "time", left, strings.Repeat(" ", max(gap, 1)), right, timeW, "time")
	for _, ln := range l.lines {
		if ln.note != "" {
			l.writeWrapped(w, "# "+ln.note, strings.Repeat(" ", timeW+1))
			continue
		}
		var mid string
		switch {
		case ln.side < 0:
			mid = ""
		case ln.fate == fateNone:
			if ln.side == 0 {
				mid = "[" + ln.tag + "]"
			} else {
				mid = fmt.Sprintf("%*s", aw, "["+ln.tag+"]")
			}
			if ln.tag == "" {
				mid = ""
			}
		default:
			mid = drawArrow(ln.dir, ln.label, ln.fate, aw)
		}
		lt, rt := "", ""
		if ln.hasT[0] && l.known[0] {
			lt = fmtTime(ln.t[0])
		}
		if ln.hasT[1] && l.known[1] {
			rt = fmtTime(ln.t[1])
		}
		line := fmt.Sprintf("%*s %-*s %-*s %-*s %*s", timeW, lt, stateW, ln.st[0], aw, mid, stateW, ln.st[1], timeW, rt)
		w.WriteString(strings.TrimRight(line, " "))
		w.WriteByte('\n')
		if !l.opt.NoExplain && len(ln.text) > 0 {
			l.writeWrapped(w, sentence(ln.text), strings.Repeat(" ", timeW+1+2))
		}
	}
}

// writeWrapped writes s in lines no wider than the ladder, each starting
// with indent.
func (l *ladder) writeWrapped(w *bufio.Writer, s, indent string) {
	width := l.opt.Width - len(indent)
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			w.WriteString(indent + line + "\n")
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		w.WriteString(indent + line + "\n")
	}
}

// sentence joins fragments into sentences, one per run of the same host:
// "client: connects (active OPEN), sends SYN. server: ...".
func sentence(fs []frag) string {
	var b strings.Builder
	for i := 0; i < len(fs); {
		j := i + 1
		for j < len(fs) && fs[j].host == fs[i].host {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		parts := make([]string, 0, j-i)
		for _, f := range fs[i:j] {
			parts = append(parts, f.s)
		}
		body := strings.Join(parts, ", ")
		if fs[i].host != "" {
			b.WriteString(fs[i].host + ": " + body)
		} else {
			b.WriteString(capitalize(body))
		}
		b.WriteByte('.')
		i = j
	}
	return b.String()
}

func capitalize(s string) string {
	for i, r := range s {
		return string(unicode.ToUpper(r)) + s[i+len(string(r)):]
	}
	return s
}

func fmtTime(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// drawArrow draws a segment's arrow, width columns wide:
//
//	--> label ---------->   delivered, left to right
//	<---------- label <--   delivered, right to left
//	--> label -------- ...  in flight; arrives on a later line
//	... label ---------->   arriving; sent on an earlier line
//	--> label ---X          lost
//	--> label ----------X   corrupted: the receiver's checksum catches it
func drawArrow(dir int, label string, f fate, width int) string {
	body := " " + label + " "
	fill := func(n int) string { return strings.Repeat("-", max(n, 1)) }
	var s string
	if dir > 0 {
		switch f {
		case fateDelivered:
			s = "-->" + body + fill(width-3-len(body)-1) + ">"
		case fateInFlight:
			s = "-->" + body + fill(width-3-len(body)-4) + " ..."
		case fateArrival:
			s = "..." + body + fill(width-3-len(body)-1) + ">"
		case fateArrivalCorrupt:
			s = "..." + body + fill(width-3-len(body)-1) + "X"
		case fateLost:
			s = "-->" + body + fill(max(width/2, 3+len(body)+3)-3-len(body)-1) + "X"
		case fateCorrupt:
			s = "-->" + body + fill(width-3-len(body)-1) + "X"
		}
		return s
	}
	switch f {
	case fateDelivered:
		s = "<" + fill(width-3-len(body)-1) + body + "<--"
	case fateInFlight:
		s = "... " + fill(width-3-len(body)-4) + body + "<--"
	case fateArrival:
		s = "<" + fill(width-3-len(body)-1) + body + "..."
	case fateArrivalCorrupt:
		s = "X" + fill(width-3-len(body)-1) + body + "..."
	case fateLost:
		n := max(width/2, 3+len(body)+3)
		s = strings.Repeat(" ", max(width-n, 0)) + "X" + fill(n-3-len(body)-1) + body + "<--"
	case fateCorrupt:
		s = "X" + fill(width-3-len(body)-1) + body + "<--"
	}
	return s
}
