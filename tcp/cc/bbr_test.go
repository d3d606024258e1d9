package cc

import (
	"math"
	"testing"
	"time"
)

// path is a bottleneck of rate bw bytes per second and round-trip
// propagation time rtt, driven one round trip at a time: BBR's window and
// pacing rate decide what is in flight; the bottleneck delivers it at
// most at its rate, and what exceeds one bandwidth-delay product waits in
// its queue, lengthening the round trip.
type path struct {
	b         *BBR
	bw        float64
	rtt       time.Duration
	now       time.Time
	delivered int64
	prevStart int64 // C.delivered when the previous round began
	prevN     int   // segments in flight in the previous round; 0 before the first
	lossEvery int   // every lossEvery-th segment is lost; 0: none
	seg       int
	gains     map[float64]bool // the pacing gains seen after each ACK, when not nil
}

func newPath(bw float64, rtt time.Duration) *path {
	return &path{b: NewBBR(Config{MSS: 1460}), bw: bw, rtt: rtt, now: t0}
}

// round runs one round trip and returns what was in flight. An
// application-limited round has four segments in flight.
func (p *path) round(appLimited bool) int {
	b := p.b
	flight := b.CWnd()
	if r := b.PacingRate(); r > 0 {
		flight = min(flight, int(r*p.rtt.Seconds())+3*b.SendQuantum())
	}
	if appLimited {
		flight = min(flight, 4*b.mss)
	}
	// The round lasts the propagation time or, when more is in flight than
	// the bottleneck carries in that time, as long as the bottleneck needs.
	dur := max(p.rtt, time.Duration(float64(flight)/p.bw*float64(time.Second)))
	n := max(flight/b.mss, 1)
	start := p.delivered
	for i := range n {
		// The segment ACKed now was sent, ACK-clocked, when the previous
		// round's ACK i arrived: its sample spans that round's flight,
		// which took at least its size over the bottleneck rate to pass.
		var prior int64
		if p.prevN > 0 {
			prior = p.prevStart + int64(min(i+1, p.prevN)*b.mss)
		}
		p.now = p.now.Add(dur / time.Duration(n))
		p.seg++
		lost := p.lossEvery > 0 && p.seg%p.lossEvery == 0
		if lost {
			b.OnCongestion(p.now, flight-i*b.mss)
		}
		p.delivered += int64(b.mss)
		rs := RateSample{
			Now: p.now, Delivered: p.delivered, PriorDelivered: prior,
			Acked: b.mss, InFlight: flight - b.mss, AppLimited: appLimited, RTT: p.rtt,
		}
		rs.DeliveredBytes = rs.Delivered - rs.PriorDelivered
		rs.Interval = max(dur, time.Duration(float64(rs.DeliveredBytes)/p.bw*float64(time.Second)))
		if lost {
			rs.Lost = b.mss
		}
		b.OnRateSample(rs)
		if lost {
			b.OnRecoveryEnd(p.now)
		}
		if p.gains != nil {
			p.gains[b.pacingGain] = true
		}
	}
	p.prevStart, p.prevN = start, n
	return flight
}

func (p *path) rounds(n int) {
	for range n {
		p.round(false)
	}
}

func TestBBRStartupFindsThePath(t *testing.T) {
	const bw = 10e6 // 80 Mbit/s
	p := newPath(bw, 50*time.Millisecond)
	if p.b.PacingRate() != 0 || p.b.CWnd() != 14600 || p.b.mode != bbrStartup {
		t.Fatalf("fresh BBR: rate %v cwnd %d mode %d", p.b.PacingRate(), p.b.CWnd(), p.b.mode)
	}
	startupRounds := 0
	for p.b.mode == bbrStartup && startupRounds < 40 {
		p.round(false)
		startupRounds++
	}
	// Doubling from 10 segments to a BDP of 342 takes about log2(34) = 5
	// rounds, and three more without growth fill the pipe.
	if startupRounds < 5 || startupRounds > 14 {
		t.Errorf("Startup took %d rounds", startupRounds)
	}
	p.rounds(30)
	b := p.b
	if b.mode != bbrProbeBW {
		t.Fatalf("mode %d after 30 more rounds, want ProbeBW", b.mode)
	}
	if got := b.btlBw(); math.Abs(got-bw)/bw > 0.05 {
		t.Errorf("BtlBw %.0f, want %.0f", got, bw)
	}
	if b.rtProp != 50*time.Millisecond {
		t.Errorf("RTprop %v, want 50ms", b.rtProp)
	}
	bdp := int(bw * 0.05)
	if c := b.CWnd(); c < 2*bdp || c > 2*bdp+4*b.SendQuantum() {
		t.Errorf("cwnd %d, want 2 BDP (%d) plus three quanta (%d)", c, 2*bdp, 3*b.SendQuantum())
	}
	if q, want := b.SendQuantum(), int(b.PacingRate()/1000); q != want {
		t.Errorf("send quantum %d at %.0f B/s, want a millisecond's worth, %d", q, b.PacingRate(), want)
	}
	// The gain cycle: over sixteen rounds every gain shows up.
	p.gains = map[float64]bool{}
	p.rounds(16)
	for _, g := range bbrCycle {
		if !p.gains[g] {
			t.Errorf("pacing gain %v never used in ProbeBW (saw %v)", g, p.gains)
		}
	}
}

func TestBBRRandomLossLeavesTheModel(t *testing.T) {
	const bw = 10e6
	p := newPath(bw, 50*time.Millisecond)
	p.rounds(40)
	before := p.b.btlBw()
	p.lossEvery = 1000 // 0.1%
	p.rounds(100)
	b := p.b
	if got := b.btlBw(); got < 0.95*before {
		t.Errorf("BtlBw fell from %.0f to %.0f under 0.1%% loss", before, got)
	}
	bdp := int(bw * 0.05)
	if c := b.CWnd(); c < 2*bdp {
		t.Errorf("cwnd %d after recovery ends, want at least 2 BDP %d", c, 2*bdp)
	}
	// During a recovery's first round, packet conservation: what is in
	// flight plus one segment.
	b.OnCongestion(p.now, 100*b.mss)
	if b.CWnd() != 101*b.mss {
		t.Errorf("cwnd %d on entering recovery with 100 segments in flight, want %d", b.CWnd(), 101*b.mss)
	}
	b.OnRecoveryEnd(p.now)
	if c := b.CWnd(); c < 2*bdp {
		t.Errorf("cwnd %d after the recovery, want the prior window back", c)
	}
}

func TestBBRProbeRTT(t *testing.T) {
	p := newPath(10e6, 50*time.Millisecond)
	p.rounds(40)
	b := p.b
	prior := b.CWnd()
	// Eleven seconds with the round trip 10 ms longer than the least seen:
	// RTprop expires, and BBR drains the pipe to see the true one.
	p.rtt = 60 * time.Millisecond
	entered := false
	for range int(11 * time.Second / p.rtt) {
		p.round(false)
		if b.mode == bbrProbeRTT {
			entered = true
			break
		}
	}
	if !entered {
		t.Fatal("no ProbeRTT after 11 s without a lower RTT")
	}
	if b.CWnd() != bbrMinPipeSegs*b.mss {
		t.Errorf("cwnd %d in ProbeRTT, want %d", b.CWnd(), bbrMinPipeSegs*b.mss)
	}
	start := p.now
	for b.mode == bbrProbeRTT && p.now.Sub(start) < 2*time.Second {
		p.round(false)
	}
	if b.mode != bbrProbeBW {
		t.Fatalf("still in mode %d %v after entering ProbeRTT", b.mode, p.now.Sub(start))
	}
	if d := p.now.Sub(start); d < bbrProbeRTTTime {
		t.Errorf("ProbeRTT lasted %v, want at least %v", d, bbrProbeRTTTime)
	}
	if b.rtProp != 60*time.Millisecond {
		t.Errorf("RTprop %v after ProbeRTT, want the new 60ms", b.rtProp)
	}
	if b.CWnd() < prior*9/10 {
		t.Errorf("cwnd %d after ProbeRTT, want the prior %d restored", b.CWnd(), prior)
	}
}

func TestBBRAppLimitedKeepsTheEstimate(t *testing.T) {
	p := newPath(10e6, 50*time.Millisecond)
	p.rounds(40)
	before := p.b.btlBw()
	for range 50 {
		p.round(true) // four segments a round: 1.2 Mbit/s
	}
	if got := p.b.btlBw(); got != before {
		t.Errorf("BtlBw %.0f after application-limited rounds, want %.0f kept", got, before)
	}
}

func TestBBRTimeout(t *testing.T) {
	p := newPath(10e6, 50*time.Millisecond)
	p.rounds(40)
	b := p.b
	b.OnTimeout(p.now, b.CWnd())
	if b.CWnd() != b.mss {
		t.Fatalf("cwnd %d after a timeout, want one SMSS", b.CWnd())
	}
	p.rounds(12)
	if c, bdp := b.CWnd(), int(10e6*0.05); c < 2*bdp {
		t.Errorf("cwnd %d twelve rounds after the timeout, want 2 BDP %d again", c, 2*bdp)
	}
}

// FuzzBBR drives BBR with random events and rate samples and checks its
// window and pacing rate stay within bounds.
func FuzzBBR(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, mss uint16, iw uint8, data []byte) {
		fuzzEvents(t, "bbr", mss, iw, data)
	})
}
