package stack

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/tcp"
)

// eventLog is a concurrency-safe Observer that keeps copies of events.
type eventLog struct {
	mu sync.Mutex
	ev []tcp.Event
}

func (l *eventLog) Observe(e *tcp.Event) {
	l.mu.Lock()
	l.ev = append(l.ev, *e)
	l.mu.Unlock()
}

func (l *eventLog) events() []tcp.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tcp.Event(nil), l.ev...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubscribe: a subscriber for state changes sees the client's whole
// life, from CLOSED through SYN-SENT and ESTABLISHED to CLOSED again; one for segments sees the handshake's SYN; after
// cancel, nothing more arrives.
func TestSubscribe(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{})
	states, segs := &eventLog{}, &eventLog{}
	cancelStates := a.Subscribe(states, tcp.MaskOf(tcp.EventState))
	cancelSegs := a.Subscribe(segs, tcp.MaskOf(tcp.EventSegmentOut))
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	c.Read(buf) // the server's FIN
	c.Close()
	waitFor(t, 5*time.Second, "CLOSED", func() bool {
		ev := states.events()
		return len(ev) > 0 && ev[len(ev)-1].To == tcp.Closed
	})
	var path []tcp.State
	for _, e := range states.events() {
		if e.Type != tcp.EventState {
			t.Fatalf("state subscriber got a %v event", e.Type)
		}
		if len(path) == 0 {
			path = append(path, e.From)
		}
		path = append(path, e.To)
	}
	// The server closes first, so the client is the passive closer:
	// ESTABLISHED → CLOSE-WAIT → LAST-ACK → CLOSED. Either way the first
	// three states are the active open's.
	if len(path) < 3 || path[0] != tcp.Closed || path[1] != tcp.SynSent || path[2] != tcp.Established {
		t.Fatalf("client states %v, want CLOSED, SYN-SENT, ESTABLISHED, ...", path)
	}
	sawSyn := false
	for _, e := range segs.events() {
		if e.Type != tcp.EventSegmentOut {
			t.Fatalf("segment subscriber got a %v event", e.Type)
		}
		sawSyn = sawSyn || e.Segment.Flags == header.SYN
	}
	if !sawSyn {
		t.Error("segment subscriber never saw the SYN")
	}
	cancelStates()
	cancelSegs()
	cancelSegs() // twice is harmless
	n := len(states.events())
	c2, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	time.Sleep(50 * time.Millisecond)
	if got := len(states.events()); got != n {
		t.Errorf("%d events after cancel", got-n)
	}
}

// TestCountersAndTable: RFC 4022's counters move as they should, the
// transitions are counted with their causes, and the table shows each
// connection with its state and running timer.
func TestCountersAndTable(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{})
	// A refused attempt: SYN-SENT → CLOSED is an AttemptFail.
	if _, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:81"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.(*Conn)
		}
	}()
	// An established connection the client aborts: the server's
	// ESTABLISHED → CLOSED on RST is an EstabReset.
	c1, err := a.DialTCP(ctxT(t), netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	s1 := <-accepted
	c1.SetLinger(0)
	c1.Close()
	waitFor(t, 5*time.Second, "the server's reset", func() bool { return s1.Status().State == tcp.Closed })
	// One that the client closes normally, leaving it in TIME-WAIT.
	c2, err := a.DialTCP(ctxT(t), netip.MustParseAddrPort("10.0.0.2:80"))
	if err != nil {
		t.Fatal(err)
	}
	s2 := <-accepted
	c2.Close()
	waitFor(t, 5*time.Second, "FIN-WAIT-2", func() bool { return c2.Status().State == tcp.FinWait2 })
	s2.Close()
	waitFor(t, 5*time.Second, "TIME-WAIT", func() bool { return c2.Status().State == tcp.TimeWait })

	as, bs := a.Stats(), b.Stats()
	if as.AttemptFails != 1 {
		t.Errorf("client AttemptFails = %d, want 1", as.AttemptFails)
	}
	if bs.EstabResets != 1 {
		t.Errorf("server EstabResets = %d, want 1", bs.EstabResets)
	}
	if as.ActiveOpens != 3 || bs.PassiveOpens != 2 {
		t.Errorf("ActiveOpens %d PassiveOpens %d, want 3 and 2", as.ActiveOpens, bs.PassiveOpens)
	}
	if bs.InErrs != 0 || as.RetransSegs != 0 {
		t.Errorf("InErrs %d RetransSegs %d on a clean pipe, want 0", bs.InErrs, as.RetransSegs)
	}

	tr := a.Transitions()
	want := map[TransitionKey]bool{
		{From: tcp.Closed, To: tcp.SynSent, Kind: tcp.CauseCall, Call: tcp.CallOpenActive}:                     true,
		{From: tcp.SynSent, To: tcp.Closed, Kind: tcp.CauseSegment, Flags: header.RST | header.ACK}:            true,
		{From: tcp.SynSent, To: tcp.Established, Kind: tcp.CauseSegment, Flags: header.SYN | header.ACK}:       true,
		{From: tcp.Established, To: tcp.FinWait1, Kind: tcp.CauseCall, Call: tcp.CallClose}:                    true,
		{From: tcp.FinWait2, To: tcp.TimeWait, Kind: tcp.CauseSegment, Flags: header.FIN | header.ACK}:         true,
		{From: tcp.Established, To: tcp.Closed, Kind: tcp.CauseCall, Call: tcp.CallAbort}:                      true,
		{From: tcp.Closed, To: tcp.SynSent, Kind: tcp.CauseCall, Call: tcp.CallOpenActive, Flags: 0, Timer: 0}: true,
	}
	for k := range want {
		if tr[k] == 0 {
			t.Errorf("transition %v → %v (%s) not counted; have %v", k.From, k.To, k.Cause(), tr)
		}
	}
	if n := tr[TransitionKey{From: tcp.Closed, To: tcp.SynSent, Kind: tcp.CauseCall, Call: tcp.CallOpenActive}]; n != 3 {
		t.Errorf("active OPEN counted %d times, want 3", n)
	}
	k := TransitionKey{From: tcp.SynSent, To: tcp.Established, Kind: tcp.CauseSegment, Flags: header.SYN | header.ACK}
	if k.Cause() != "rcv SYN,ACK" || k.Trigger() != tcp.TrigSYNACK {
		t.Errorf("key cause %q trigger %v, want rcv SYN,ACK", k.Cause(), k.Trigger())
	}

	var tw *ConnInfo
	rows := a.Table(time.Now())
	for i := range rows {
		if rows[i].Local == c2.id.Local {
			tw = &rows[i]
		}
	}
	if tw == nil {
		t.Fatalf("the TIME-WAIT connection is not in the table %+v", rows)
	}
	if tw.State != tcp.TimeWait || !tw.HasTimer || tw.Timer != tcp.TimerTimeWait {
		t.Fatalf("row %+v: want TIME-WAIT with its 2MSL timer", *tw)
	}
	if msl2 := 2 * tcp.DefaultMSL; tw.TimerLeft <= 0 || tw.TimerLeft > msl2 {
		t.Errorf("2MSL time left %v, want in (0, %v]", tw.TimerLeft, msl2)
	}
	var listen bool
	for _, r := range b.Table(time.Now()) {
		listen = listen || r.State == tcp.Listen && r.Local.Port() == 80 && r.SendQ > 0
	}
	if !listen {
		t.Error("the listener is not in the server's table")
	}
}
