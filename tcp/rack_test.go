package tcp

import (
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

const ms = time.Millisecond

// rackPair opens a pair over a path of 100 ms round trip (50 ms each way),
// so that A's first RTT sample, from its SYN, is 100 ms; then A sends n
// segments of MSS 100 from seq 101, which B has not seen.
func rackPair(t *testing.T, cfg Config, n int) (*pair, []Segment) {
	t.Helper()
	cfg.NoTimestamps, cfg.AckDelay, cfg.NoDelay, cfg.MSS = true, -1, true, 100
	p := newPairAs(t, cfg)
	p.b.c.Listen(p.k.now, 300)
	p.a.c.Connect(p.k.now, 100)
	syn := p.a.take()[0]
	p.k.advance(50 * ms)
	p.b.in(syn)
	synack := p.b.take()[0]
	p.k.advance(50 * ms)
	p.a.in(synack)
	ack := p.a.take()[0]
	p.k.advance(50 * ms)
	p.b.in(ack)
	p.k.advance(50 * ms)
	if p.a.c.State() != Established || p.b.c.State() != Established {
		t.Fatalf("handshake failed: %v %v", p.a.c.State(), p.b.c.State())
	}
	if st := p.a.c.Status(); st.SRTT != 100*ms {
		t.Fatalf("A's SRTT %v after the handshake, want 100ms", st.SRTT)
	}
	p.a.c.Write(p.k.now, make([]byte, n*100))
	sent := p.a.take()
	if len(sent) != n {
		t.Fatalf("sent %d segments, want %d", len(sent), n)
	}
	return p, sent
}

// deliver hands B the segments and returns B's answers.
func deliver(b *end, ss ...Segment) []Segment {
	for _, s := range ss {
		b.in(s)
	}
	return b.take()
}

func seqsOf(ss []Segment) []seqnum.Value {
	var v []seqnum.Value
	for _, s := range ss {
		if len(s.Payload) > 0 {
			v = append(v, s.Seq)
		}
	}
	return v
}

// TestTailLossProbe: the last two segments of a flight are lost. Without
// RACK-TLP nothing but the retransmission timer could find them; with it,
// two SRTTs after the last ACK the probe resends the last segment (RFC 8985
// §7.3), its SACK lets RACK deem the other lost (§6.2), and both are
// repaired a round trip later, with no timeout.
func TestTailLossProbe(t *testing.T) {
	p, sent := rackPair(t, Config{}, 10)
	a, b := p.a, p.b
	sendAt := p.k.now
	p.k.advance(50 * ms)
	acks := deliver(b, sent[:8]...)
	p.k.advance(50 * ms)
	for _, s := range acks {
		a.in(s)
	}
	if got := a.take(); len(got) != 0 {
		t.Fatalf("A sent %s on the ACKs of the first eight", segs(got))
	}
	st := a.c.Status()
	if st.Timers[TimerLossProbe].IsZero() || !st.Timers[TimerRetransmit].IsZero() {
		t.Fatalf("after the ACKs: loss probe at %v, RTO at %v; want the probe armed in the RTO's place",
			st.Timers[TimerLossProbe], st.Timers[TimerRetransmit])
	}
	// PTO = 2*SRTT (two segments in flight, so no delayed-ACK allowance).
	if d := st.Timers[TimerLossProbe].Sub(p.k.now); d != 200*ms {
		t.Fatalf("PTO %v, want 2*SRTT = 200ms", d)
	}
	p.k.now = a.c.Deadline()
	a.fire()
	probe := a.take()
	if len(probe) != 1 || probe[0].Seq != 1001 || len(probe[0].Payload) != 100 {
		t.Fatalf("probe: %s, want the last segment, seq 1001", segs(probe))
	}
	if !a.c.Status().Timers[TimerRetransmit].After(p.k.now) {
		t.Fatal("the RTO is not armed after the probe (RFC 8985 §7.3)")
	}
	p.k.advance(50 * ms)
	sack := deliver(b, probe...)
	if len(sack) != 1 || sack[0].Ack != 901 || sack[0].Options.NumSACK != 1 {
		t.Fatalf("B's answer to the probe: %s", segs(sack))
	}
	p.k.advance(50 * ms)
	a.in(sack[0])
	rtx := a.take()
	if got := seqsOf(rtx); len(got) != 1 || got[0] != 901 {
		t.Fatalf("after the probe's SACK A resent %v, want [901]", got)
	}
	p.k.advance(50 * ms)
	final := deliver(b, rtx...)
	p.k.advance(50 * ms)
	a.in(final[len(final)-1])
	if a.c.SendQueued() != 0 {
		t.Fatalf("%d bytes still unacknowledged", a.c.SendQueued())
	}
	for _, e := range a.events {
		if e.Type == EventTimerFired && e.Timer == TimerRetransmit {
			t.Fatal("the retransmission timer fired")
		}
	}
	if took := p.k.now.Sub(sendAt); took > 500*ms {
		t.Fatalf("repair took %v, want within 5 RTTs", took)
	}
	if a.c.lossSt != nil {
		t.Fatal("RACK's record kept with nothing in flight")
	}
}

// TestTailLossProbeSingle: the one segment of a flight's tail is lost; the
// probe resends it and, its ACK carrying no DSACK, the congestion window
// falls once (RFC 8985 §7.4.2).
func TestTailLossProbeSingle(t *testing.T) {
	p, sent := rackPair(t, Config{}, 4)
	a, b := p.a, p.b
	p.k.advance(50 * ms)
	acks := deliver(b, sent[:3]...)
	p.k.advance(50 * ms)
	for _, s := range acks {
		a.in(s)
	}
	cwnd := a.c.Status().Cwnd
	// One segment in flight: PTO = 2*SRTT + WCDelAckT, at most the RTO.
	st := a.c.Status()
	if d := st.Timers[TimerLossProbe].Sub(p.k.now); d != min(400*ms, st.RTO) {
		t.Fatalf("PTO %v, want min(2*SRTT+200ms, RTO %v)", d, st.RTO)
	}
	p.k.now = a.c.Deadline()
	a.fire()
	probe := a.take()
	if len(probe) != 1 || probe[0].Seq != 401 {
		t.Fatalf("probe: %s, want seq 401", segs(probe))
	}
	p.k.advance(50 * ms)
	ack := deliver(b, probe...)
	p.k.advance(50 * ms)
	a.in(ack[0])
	if a.c.SendQueued() != 0 {
		t.Fatalf("%d bytes still unacknowledged", a.c.SendQueued())
	}
	if got := a.c.Status().Cwnd; got >= cwnd {
		t.Fatalf("cwnd %d after a probe repaired a loss, want below %d", got, cwnd)
	}
}

// TestRACKReorderWindow: segment 0 is missing while 1–3 are SACKed. Three
// duplicate ACKs would trigger a fast retransmit at once (RFC 5681); RACK
// waits the reordering window, RACK.rtt + min_RTT/4 after the segment was
// sent (RFC 8985 §6.2 step 5, §6.3), then deems it lost and resends it.
func TestRACKReorderWindow(t *testing.T) {
	p, sent := rackPair(t, Config{}, 4)
	a, b := p.a, p.b
	p.k.advance(50 * ms)
	dups := deliver(b, sent[1:]...)
	p.k.advance(50 * ms)
	for _, d := range dups {
		a.in(d)
	}
	if got := a.take(); len(got) != 0 {
		t.Fatalf("A resent %s within the reordering window", segs(got))
	}
	st := a.c.Status()
	if d := st.Timers[TimerReorder].Sub(p.k.now); d != 25*ms {
		t.Fatalf("reordering timer in %v, want min_RTT/4 = 25ms", d)
	}
	p.k.advance(24 * ms)
	a.fire()
	if got := a.take(); len(got) != 0 {
		t.Fatalf("A resent %s before the window passed", segs(got))
	}
	p.k.advance(1 * ms)
	a.fire()
	rtx := a.take()
	if got := seqsOf(rtx); len(got) != 1 || got[0] != 101 || rtx[0].Seq != 101 {
		t.Fatalf("after the window A resent %s, want seq 101 only", segs(rtx))
	}
	if !a.c.inRecovery {
		t.Fatal("RACK's loss did not start recovery")
	}
	p.k.advance(50 * ms)
	acks := deliver(b, rtx...)
	p.k.advance(50 * ms)
	a.in(acks[len(acks)-1])
	if a.c.SendQueued() != 0 || a.c.inRecovery {
		t.Fatalf("not recovered: %d queued, in recovery %v", a.c.SendQueued(), a.c.inRecovery)
	}
}

// TestRACKMildReordering: segment 0 arrives 10 ms after the three behind
// it. RACK resends nothing, and the window is not cut; with RACK off, the
// same three duplicate ACKs draw a spurious fast retransmit.
func TestRACKMildReordering(t *testing.T) {
	for _, noRACK := range []bool{false, true} {
		p, sent := rackPair(t, Config{NoRACK: noRACK}, 4)
		a, b := p.a, p.b
		cwnd := a.c.Status().Cwnd
		p.k.advance(50 * ms)
		dups := deliver(b, sent[1:]...)
		p.k.advance(10 * ms)
		late := deliver(b, sent[0])
		p.k.advance(40 * ms)
		var rtx []Segment
		for _, d := range dups {
			a.in(d)
			rtx = append(rtx, a.take()...)
		}
		p.k.advance(10 * ms)
		a.in(late[0])
		rtx = append(rtx, a.take()...)
		var resent int
		for _, s := range rtx {
			if s.Seq.LessThan(501) && len(s.Payload) > 0 {
				resent++
			}
		}
		switch {
		case !noRACK && resent != 0:
			t.Errorf("RACK: %d spurious retransmissions on reordering within the window: %s", resent, segs(rtx))
		case !noRACK && a.c.Status().Cwnd < cwnd:
			t.Errorf("RACK: cwnd fell from %d to %d on mere reordering", cwnd, a.c.Status().Cwnd)
		case noRACK && resent != 1:
			t.Errorf("without RACK: %d retransmissions, want the one spurious fast retransmit", resent)
		}
		if a.c.SendQueued() != 0 {
			t.Errorf("NoRACK=%v: %d bytes unacknowledged", noRACK, a.c.SendQueued())
		}
	}
}

// TestRACKReorderWindowDSACK: a D-SACK tells the sender that a
// retransmission was spurious, and RACK widens its reordering window by a
// quarter of the least RTT, at most once per round trip, and back to the
// base after sixteen recoveries (RFC 8985 §6.2 step 4).
func TestRACKReorderWindowDSACK(t *testing.T) {
	p, _ := rackPair(t, Config{}, 10)
	a := p.a
	if got := a.c.reoWnd(); got != 25*ms {
		t.Fatalf("reo_wnd %v, want a quarter of the 100 ms RTT", got)
	}
	p.k.advance(100 * ms)
	// An ACK of five segments whose D-SACK block, below the cumulative
	// ACK, reports the first segment received twice.
	a.in(withSACK(S("ACK", 301, 601, 65535, ""), header.SACKBlock{Left: 101, Right: 201}))
	if got := a.c.reoWnd(); got != 50*ms {
		t.Fatalf("reo_wnd %v after a D-SACK, want 50ms", got)
	}
	// A second D-SACK in the same round trip changes nothing.
	a.in(withSACK(S("ACK", 301, 701, 65535, ""), header.SACKBlock{Left: 201, Right: 301}))
	if got := a.c.reoWnd(); got != 50*ms {
		t.Fatalf("reo_wnd %v after a second D-SACK in the round, want 50ms still", got)
	}
	// An ordinary SACK is no D-SACK.
	if plain := withSACK(S("ACK", 301, 701, 65535, ""), header.SACKBlock{Left: 801, Right: 901}); hasDSACK(&plain) {
		t.Fatal("a SACK above the ACK taken for a D-SACK")
	}
	// Sixteen recoveries later the window is back to its base.
	for range 16 {
		a.c.rackRecoveryEnd()
	}
	if got := a.c.reoWnd(); got != 25*ms {
		t.Fatalf("reo_wnd %v after sixteen recoveries, want 25ms", got)
	}
}

// TestRTOFromHeadRetransmission: when the first unacknowledged segment
// is retransmitted, the retransmission timer counts from that
// transmission (as Linux's tcp_rearm_rto): a fast retransmission that is
// lost too is left to RACK, not to a timer set a round trip earlier,
// whose go-back-N would resend the whole flight.
func TestRTOFromHeadRetransmission(t *testing.T) {
	p, _ := rackPair(t, Config{}, 5)
	a := p.a
	a.c.setTimer(p.k.now, TimerRetransmit, p.k.now.Add(a.c.rto))
	p.k.advance(150 * ms)
	a.c.retransmitAt(p.k.now, a.c.sndUna, ReasonFastRetransmit)
	if got := a.take(); len(got) != 1 || got[0].Seq != 101 {
		t.Fatalf("retransmitted %s, want 101", segs(got))
	}
	st := a.c.Status()
	if d := st.Timers[TimerRetransmit]; !d.Equal(p.k.now.Add(st.RTO)) {
		t.Fatalf("RTO due %v after the head's retransmission, want the RTO %v", d.Sub(p.k.now), st.RTO)
	}
	// A retransmission further on leaves the timer as it is.
	due := st.Timers[TimerRetransmit]
	p.k.advance(10 * ms)
	a.c.retransmitAt(p.k.now, a.c.sndUna.Add(200), ReasonFastRetransmit)
	if d := a.c.Status().Timers[TimerRetransmit]; !d.Equal(due) {
		t.Fatalf("a retransmission past SND.UNA moved the RTO by %v", d.Sub(due))
	}
}

// withSACK returns s carrying the SACK blocks bs.
func withSACK(s Segment, bs ...header.SACKBlock) Segment {
	s.Options.NumSACK = copy(s.Options.SACKBlocks[:], bs)
	return s
}
