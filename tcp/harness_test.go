package tcp

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// The test harness: an "end" is one Conn with a recorder for what it sends
// and which states it passes through. Tests feed ends exact segments and
// assert the exact segments that come back, in the manner of RFC 9293's
// own examples.

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sockA = netip.MustParseAddrPort("10.0.0.1:40000")
	sockB = netip.MustParseAddrPort("10.0.0.2:80")
)

// Full is the window an empty default receive buffer advertises.
const Full = 65535

// clock is the virtual time shared by the ends of one test.
type clock struct{ now time.Time }

func (k *clock) advance(d time.Duration) { k.now = k.now.Add(d) }

type end struct {
	t      *testing.T
	name   string
	k      *clock
	c      *Conn
	out    []Segment
	states []State
	events []Event
}

// classic turns off what RFC 9293 itself does not describe — window
// scaling, timestamps, SACK, Nagle, delayed ACKs — and fixes the buffers at
// 65535 bytes and the least RTO at 1 s, so that tests see the RFC's own
// segments. Tests of those features build their ends with newEndAs.
func classic(cfg Config) Config {
	cfg.NoWindowScale, cfg.NoTimestamps, cfg.NoSACK, cfg.NoDelay = true, true, true, true
	if cfg.AckDelay == 0 {
		cfg.AckDelay = -1
	}
	if cfg.MinRTO == 0 {
		cfg.MinRTO = time.Second
	}
	if cfg.ReceiveBuffer == 0 {
		cfg.ReceiveBuffer = 65535
	}
	if cfg.SendBuffer == 0 {
		cfg.SendBuffer = 65535
	}
	return cfg
}

func newEnd(t *testing.T, name string, k *clock, local, remote netip.AddrPort, cfg Config) *end {
	t.Helper()
	return newEndAs(t, name, k, local, remote, classic(cfg))
}

// newEndAs builds an end with cfg as it is.
func newEndAs(t *testing.T, name string, k *clock, local, remote netip.AddrPort, cfg Config) *end {
	t.Helper()
	e := &end{t: t, name: name, k: k, states: []State{Closed}}
	cfg.Observer = e
	e.c = NewConn(Tuple{Local: local, Remote: remote}, &cfg, e)
	return e
}

// Send records a segment the Conn sent, copying its payload.
func (e *end) Send(c *Conn, seg *Segment) {
	if c != e.c {
		e.t.Errorf("%s: Output got a different Conn", e.name)
	}
	s := *seg
	s.Payload = append([]byte(nil), seg.Payload...)
	e.out = append(e.out, s)
}

// Observe records events and the edges they drive.
func (e *end) Observe(ev *Event) {
	e.events = append(e.events, *ev)
	if ev.Time != e.k.now {
		e.t.Errorf("%s: event at %v, want the time of the call %v", e.name, ev.Time, e.k.now)
	}
	if ev.Type != EventState {
		return
	}
	if ev.From != e.states[len(e.states)-1] {
		e.t.Errorf("%s: state event from %v, but the connection was in %v", e.name, ev.From, e.states[len(e.states)-1])
	}
	e.states = append(e.states, ev.To)
	if !recordEdge(ev) {
		e.t.Errorf("%s: transition %v -> %v on %q (%v) is not an edge of the diagram", e.name, ev.From, ev.To, TriggerOf(ev), ev.Cause)
	}
}

// in delivers a segment to the end at the current time.
func (e *end) in(s Segment) {
	e.t.Helper()
	e.c.Input(e.k.now, &s)
}

// fire runs the end's timers at the current time.
func (e *end) fire() { e.c.HandleTimeout(e.k.now) }

// take returns the segments sent since the last take.
func (e *end) take() []Segment {
	s := e.out
	e.out = nil
	return s
}

// expect asserts that exactly want were sent since the last check, and
// returns them for delivery to the peer.
func (e *end) expect(want ...Segment) []Segment {
	e.t.Helper()
	got := e.take()
	if len(got) != len(want) {
		e.t.Fatalf("%s sent %d segments, want %d:\n got  %s\n want %s", e.name, len(got), len(want), segs(got), segs(want))
	}
	for i := range want {
		if !sameSegment(got[i], want[i]) {
			e.t.Fatalf("%s segment %d:\n got  %s\n want %s", e.name, i, fmtSeg(got[i]), fmtSeg(want[i]))
		}
	}
	return got
}

// expect1 asserts that exactly one segment, want, was sent and returns it.
func (e *end) expect1(want Segment) Segment {
	e.t.Helper()
	return e.expect(want)[0]
}

func (e *end) expectNone() {
	e.t.Helper()
	e.expect()
}

// wantState asserts the current state.
func (e *end) wantState(s State) {
	e.t.Helper()
	if e.c.State() != s {
		e.t.Fatalf("%s is in %v, want %v", e.name, e.c.State(), s)
	}
}

// wantStates asserts the whole sequence of states the end went through.
func (e *end) wantStates(want ...State) {
	e.t.Helper()
	if fmt.Sprint(e.states) != fmt.Sprint(want) {
		e.t.Fatalf("%s went through %v, want %v", e.name, e.states, want)
	}
}

// S builds a segment: S("SYN,ACK", seq, ack, wnd, payload).
func S(flags string, seq, ack uint32, wnd uint16, payload string) Segment {
	s := Segment{Seq: seqnum.Value(seq), Ack: seqnum.Value(ack), Window: wnd}
	for _, f := range strings.Split(flags, ",") {
		switch f {
		case "SYN":
			s.Flags |= header.SYN
		case "ACK":
			s.Flags |= header.ACK
		case "FIN":
			s.Flags |= header.FIN
		case "RST":
			s.Flags |= header.RST
		case "PSH":
			s.Flags |= header.PSH
		case "URG":
			s.Flags |= header.URG
		case "":
		default:
			panic("bad flag " + f)
		}
	}
	if payload != "" {
		s.Payload = []byte(payload)
	}
	return s
}

func sameSegment(got, want Segment) bool {
	if got.Flags != want.Flags || got.Seq != want.Seq || got.Window != want.Window {
		return false
	}
	if got.Flags&header.ACK != 0 && got.Ack != want.Ack {
		return false
	}
	return bytes.Equal(got.Payload, want.Payload)
}

func fmtSeg(s Segment) string {
	out := s.String()
	if len(s.Payload) > 0 && len(s.Payload) <= 32 {
		out += fmt.Sprintf("%q", s.Payload)
	}
	return out
}

func segs(ss []Segment) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmtSeg(s))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// pair is two ends joined by the test: A at sockA, B at sockB.
type pair struct {
	k    *clock
	a, b *end
}

func newPair(t *testing.T, cfg Config) *pair {
	k := &clock{now: t0}
	return &pair{
		k: k,
		a: newEnd(t, "A", k, sockA, sockB, cfg),
		b: newEnd(t, "B", k, sockB, sockA, cfg),
	}
}

// established runs the handshake of RFC 9293 Figure 6 with ISS 100 for A
// and 300 for B, asserting every segment.
func (p *pair) established() {
	t := p.a.t
	t.Helper()
	if err := p.b.c.Listen(p.k.now, 300); err != nil {
		t.Fatal(err)
	}
	if err := p.a.c.Connect(p.k.now, 100); err != nil {
		t.Fatal(err)
	}
	p.b.in(p.a.expect1(S("SYN", 100, 0, Full, "")))
	p.a.in(p.b.expect1(S("SYN,ACK", 300, 101, Full, "")))
	p.b.in(p.a.expect1(S("ACK", 101, 301, Full, "")))
	p.b.expectNone()
	p.a.wantState(Established)
	p.b.wantState(Established)
}

// Edge coverage: every transition any test drives is recorded, and
// TestMain fails the run if an edge of the diagram was never driven.

var (
	edgeMu  sync.Mutex
	covered = map[Edge]bool{}
)

func edgeKey(e Edge) Edge { return Edge{From: e.From, To: e.To, Trigger: e.Trigger} }

// recordEdge marks the event's edge as driven and reports whether the
// diagram has that edge.
func recordEdge(ev *Event) bool {
	k := Edge{From: ev.From, To: ev.To, Trigger: TriggerOf(ev)}
	edgeMu.Lock()
	defer edgeMu.Unlock()
	covered[k] = true
	for _, e := range Edges {
		if edgeKey(e) == k {
			return true
		}
	}
	return false
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	// Only a full run can tell whether every edge was driven.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		var missing []string
		for _, e := range Edges {
			if !covered[edgeKey(e)] {
				missing = append(missing, fmt.Sprintf("%v -> %v on %v (%s)", e.From, e.To, e.Trigger, e.Label))
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %d edges of the state diagram are driven by no test:\n  %s\n", len(missing), strings.Join(missing, "\n  "))
			code = 1
		} else {
			fmt.Printf("state diagram: all %d edges driven\n", len(Edges))
		}
	}
	os.Exit(code)
}
