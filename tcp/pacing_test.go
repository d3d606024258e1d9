package tcp

import (
	"math"
	"testing"
	"time"
)

// dataSegs counts the segments in ss that carry data.
func dataSegs(ss []Segment) int {
	n := 0
	for _, s := range ss {
		if len(s.Payload) > 0 {
			n++
		}
	}
	return n
}

// afterFirstFlight opens a pair over a 100 ms round trip with congestion
// control cc, has A send its initial window of ten 100-byte segments and
// queue 100 more, and delivers the ten ACKs to A all at once, one round
// trip later. It returns the pair and the data segments A sent then.
func afterFirstFlight(t *testing.T, cc string) (*pair, int) {
	t.Helper()
	p, sent := rackPair(t, Config{CongestionControl: cc}, 10)
	p.a.c.Write(p.k.now, make([]byte, 100*100))
	if n := dataSegs(p.a.take()); n != 0 {
		t.Fatalf("%s: %d segments beyond the initial window", cc, n)
	}
	p.k.advance(50 * ms)
	acks := deliver(p.b, sent...)
	p.k.advance(50 * ms)
	for _, a := range acks {
		p.a.in(a)
	}
	return p, dataSegs(p.a.take())
}

// TestBBRPaces checks that a BBR connection spaces its segments at its
// pacing rate, where CUBIC sends what its window allows at once.
//
// The ten ACKs of the first flight come back together 100 ms after it
// left. Their delivery-rate samples (draft-cheng-iccrg-delivery-rate-
// estimation) grow to 1000 bytes over 100 ms, 10,000 B/s, and BBR in
// Startup paces at 2.885 times that, 28,850 B/s: a 100-byte segment per
// 3.47 ms. The first ACK, with a sample of 100 bytes in 100 ms, let two
// segments go (one due, one within the send quantum), and set the next
// due 34.7 ms later.
func TestBBRPaces(t *testing.T) {
	_, cubicBurst := afterFirstFlight(t, "cubic")
	if cubicBurst < 15 {
		t.Fatalf("CUBIC sent %d segments at the ACKs, want the slow-start window's worth", cubicBurst)
	}

	p, burst := afterFirstFlight(t, "bbr")
	if burst != 2 {
		t.Errorf("BBR sent %d segments at the ACKs, want 2", burst)
	}
	st := p.a.c.Status()
	if math.Abs(st.Bandwidth-10000) > 1 || math.Abs(st.PacingRate-28850) > 1 {
		t.Errorf("bandwidth %.1f B/s, pacing %.1f B/s; want 10000 and 28850", st.Bandwidth, st.PacingRate)
	}
	// The first wait is what the first ACK's slower rate set.
	first := 100 / (2.885 * 1000) * float64(time.Second)
	if d := p.a.c.Deadline().Sub(p.k.now); math.Abs(float64(d)-first) > float64(time.Microsecond) {
		t.Errorf("next segment due in %v, want %v", d, time.Duration(first))
	}
	gapF := 100 / 28850.0 * float64(time.Second)
	gap := time.Duration(gapF)
	for i := range 8 {
		d := p.a.c.Deadline()
		if i > 0 {
			if got := d.Sub(p.k.now); got < gap-time.Microsecond || got > gap+time.Microsecond {
				t.Errorf("segment %d due %v after the previous, want %v", i, got, gap)
			}
		}
		p.k.now = d
		p.a.fire()
		if n := dataSegs(p.a.take()); n != 1 {
			t.Fatalf("pacing deadline %d sent %d segments, want 1", i, n)
		}
	}
	// Nothing early: just before the deadline, nothing goes.
	d := p.a.c.Deadline()
	p.k.now = d.Add(-time.Microsecond)
	p.a.fire()
	if n := dataSegs(p.a.take()); n != 0 {
		t.Errorf("%d segments sent before they were due", n)
	}
}
