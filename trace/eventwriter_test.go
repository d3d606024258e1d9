package trace

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// queue is a tcp.Output that keeps segments for delivery by hand.
type queue struct{ segs []tcp.Segment }

func (q *queue) Send(c *tcp.Conn, seg *tcp.Segment) {
	s := *seg
	s.Payload = append([]byte(nil), seg.Payload...)
	q.segs = append(q.segs, s)
}

// TestEventWriter: a handshake observed by an EventWriter reads back as
// records with the host, the connection, increasing steps that begin at
// calls and arrivals, and the client's state changes in order.
func TestEventWriter(t *testing.T) {
	var out bytes.Buffer
	start := time.Unix(1000, 0)
	a := netip.MustParseAddrPort("10.0.0.1:40000")
	b := netip.MustParseAddrPort("10.0.0.2:80")
	ew := NewEventWriter(&out, "tcpstate", a.Addr(), start)
	qa, qb := &queue{}, &queue{}
	ca := tcp.NewConn(tcp.Tuple{Local: a, Remote: b}, nil, qa)
	cb := tcp.NewConn(tcp.Tuple{Local: b, Remote: a}, nil, qb)
	ca.SetObserver(ew)
	now := start.Add(time.Millisecond)
	cb.Listen(now, 500)
	ca.Connect(now, 100)
	for len(qa.segs)+len(qb.segs) > 0 {
		for _, s := range qa.segs {
			cb.Input(now, &s)
		}
		qa.segs = qa.segs[:0]
		for _, s := range qb.segs {
			ca.Input(now, &s)
		}
		qb.segs = qb.segs[:0]
	}
	if err := ew.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadJSON(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 5 || recs[0].Kind != KindHost || recs[0].Addr != a.Addr() {
		t.Fatalf("want a host record first and the handshake after it, got %+v", recs)
	}
	var states []tcp.State
	var last uint64
	for _, r := range recs[1:] {
		if r.Host != "tcpstate" || r.Conn.Local != a || r.Conn.Remote != b {
			t.Fatalf("record %+v: wrong host or connection", r)
		}
		if r.Step < last {
			t.Fatalf("steps go backwards: %d after %d", r.Step, last)
		}
		if (r.Kind == KindSegmentIn || r.Kind == KindCall) && r.Step == last {
			t.Fatalf("%s record did not begin a step", r.Kind)
		}
		last = r.Step
		if r.Kind == KindState {
			states = append(states, r.To)
		}
		if r.T != time.Millisecond {
			t.Fatalf("record time %v, want 1ms after the start", r.T)
		}
	}
	want := []tcp.State{tcp.SynSent, tcp.Established}
	if len(states) != len(want) || states[0] != want[0] || states[1] != want[1] {
		t.Errorf("states %v, want %v", states, want)
	}
}
