package cc

import (
	"math"
	"testing"
	"time"
)

const seg = 1000 // SMSS of the CUBIC tests, so windows read as segments*1000

// cubicAfterLoss returns a CUBIC flow that slow-started to w segments and
// then had a congestion event and its recovery.
func cubicAfterLoss(t *testing.T, w int, rtt time.Duration) (*Cubic, *flow) {
	t.Helper()
	c := NewCubic(Config{MSS: seg})
	f := newFlow(c, seg, rtt)
	f.slowStartTo(t, w*seg)
	c.OnCongestion(f.now, c.CWnd())
	c.OnRecoveryEnd(f.now)
	return c, f
}

// K = cbrt(W_max*(1-β)/C) when the stage starts at β*W_max (RFC 9438
// §4.2, equation 2).
func TestCubicK(t *testing.T) {
	for _, tc := range []struct {
		wmax int
		k    float64 // seconds, worked out by hand
	}{
		{10, 1.957434},   // cbrt(7.5)
		{100, 4.217163},  // cbrt(75)
		{1000, 9.085603}, // cbrt(750)
		{4000, 14.42250}, // cbrt(3000)
	} {
		c, f := cubicAfterLoss(t, tc.wmax, 100*time.Millisecond)
		if c.k != 0 || c.inEpoch {
			t.Fatalf("W_max %d: stage started before the first ACK", tc.wmax)
		}
		f.now = f.now.Add(time.Millisecond)
		f.ack(seg, false)
		formula := math.Cbrt(float64(tc.wmax) * (1 - 0.7) / 0.4)
		if !near(c.k, tc.k, 1e-5) || !near(c.k, formula, 1e-9) {
			t.Errorf("W_max %d: K = %.6f, want %.6f (formula %.6f)", tc.wmax, c.k, tc.k, formula)
		}
		if c.wMax != float64(tc.wmax*seg) {
			t.Errorf("W_max %d: W_max = %v bytes", tc.wmax, c.wMax)
		}
		if !c.epochStart.Equal(f.now) {
			t.Errorf("W_max %d: t_epoch %v, want the first ACK's time %v", tc.wmax, c.epochStart, f.now)
		}
	}
}

// cwnd and ssthresh = max(β*cwnd, 2*SMSS) on a congestion event (RFC 9438
// §4.6).
func TestCubicReduction(t *testing.T) {
	for _, tc := range []struct {
		before, after int // bytes
	}{
		{100000, 70000},
		{14600, 10220},
		{12345, 8642}, // 8641.5 rounds to 8642
		{3000, 2100},
		{2000, 2000}, // 1400 is below the 2*SMSS floor
		{1000, 2000},
	} {
		c := NewCubic(Config{MSS: seg, InitialWindow: 1})
		c.cwnd = float64(tc.before)
		c.OnCongestion(t0, 0)
		if c.CWnd() != tc.after || c.SSThresh() != tc.after {
			t.Errorf("cwnd %d: after loss cwnd %d ssthresh %d, want %d", tc.before, c.CWnd(), c.SSThresh(), tc.after)
		}
		if c.cwndPrior != float64(tc.before) || c.wMax != float64(tc.before) {
			t.Errorf("cwnd %d: cwnd_prior %v W_max %v, want both %d", tc.before, c.cwndPrior, c.wMax, tc.before)
		}
		c.OnRecoveryEnd(t0)
		if c.CWnd() != tc.after {
			t.Errorf("cwnd %d: after recovery cwnd %d, want %d", tc.before, c.CWnd(), tc.after)
		}
	}
}

// sample is cwnd in segments at t seconds into the stage.
type sample struct{ t, w float64 }

func at(samples []sample, t float64) float64 {
	best := samples[0]
	for _, s := range samples {
		if math.Abs(s.t-t) < math.Abs(best.t-t) {
			best = s
		}
	}
	return best.w
}

// The window climbs back to W_max along the concave side, lingers near it
// around t = K, then probes beyond along the convex side (RFC 9438 §4.2,
// §4.4, §4.5).
func TestCubicGrowthCurve(t *testing.T) {
	const rtt = 100 * time.Millisecond
	c, f := cubicAfterLoss(t, 1000, rtt)
	if f.segs() != 700 {
		t.Fatalf("after the loss cwnd %v segments, want 700", f.segs())
	}
	f.round(false)
	start := c.epochStart
	K := c.k
	var samples []sample
	for f.now.Sub(start) < time.Duration((K+7)*float64(time.Second)) {
		f.round(false)
		tt := f.now.Sub(start).Seconds()
		w := f.segs()
		samples = append(samples, sample{tt, w})
		// cwnd aims one RTT ahead and gets there within the RTT, so it
		// stays between W_cubic(t) and W_cubic(t+RTT).
		lo, hi := c.wCubic(tt)/seg, c.wCubic(tt+rtt.Seconds())/seg
		if w < lo-1 || w > hi+1 {
			t.Fatalf("t=%.2f: cwnd %.2f outside [W_cubic(t)=%.2f, W_cubic(t+RTT)=%.2f]", tt, w, lo, hi)
		}
		if c.wEst > c.cwnd {
			t.Fatalf("t=%.2f: in the Reno-friendly region (W_est %.1f > cwnd %.1f) with a large BDP", tt, c.wEst/seg, w)
		}
	}
	grow := func(a, b float64) float64 { return at(samples, b) - at(samples, a) }

	// Concave: fast at first, slower and slower toward W_max.
	g01, g34, g78 := grow(0.2, 1.2), grow(3, 4), grow(7, 8)
	if !(g01 > g34 && g34 > g78 && g78 > 0) {
		t.Errorf("concave growth per second %.2f, %.2f, %.2f: want decreasing and positive", g01, g34, g78)
	}
	// W_cubic(1.2)-W_cubic(0.2) = 0.4*((9.0856-0.2)^3-(9.0856-1.2)^3) = 84.5 segments.
	if !near(g01, 84.5, 1.5) {
		t.Errorf("growth over the first second %.2f segments, want about 84.5", g01)
	}
	// Plateau: at K the window is W_max; over K±1 s it moves under one
	// segment (W_cubic(K+1)-W_cubic(K-1) = 0.8).
	if w := at(samples, K); !near(w, 1000, 0.5) {
		t.Errorf("cwnd at t=K %.2f segments, want 1000", w)
	}
	if g := grow(K-1, K+1); g < 0 || g > 1 {
		t.Errorf("growth over K±1 s %.2f segments, want under 1", g)
	}
	// Convex: slow at first, faster and faster beyond W_max.
	c12, c34, c56 := grow(K+1, K+2), grow(K+3, K+4), grow(K+5, K+6)
	if !(c56 > c34 && c34 > c12 && c12 > 0) {
		t.Errorf("convex growth per second %.2f, %.2f, %.2f: want increasing", c12, c34, c56)
	}
	// W_cubic(K+6) = 1000 + 0.4*6^3 = 1086.4.
	if w := at(samples, K+6); !near(w, 1086.4, 1) {
		t.Errorf("cwnd at K+6 s %.2f segments, want about 1086.4", w)
	}
}

// With a small window and a short RTT the cubic function grows more slowly
// than Reno would, and CUBIC follows W_est (RFC 9438 §4.3): α_cubic per RTT
// until W_est reaches cwnd_prior, then one segment per RTT.
func TestCubicRenoFriendly(t *testing.T) {
	const rtt = 10 * time.Millisecond
	c, f := cubicAfterLoss(t, 20, rtt)
	r := NewNewReno(Config{MSS: seg})
	g := newFlow(r, seg, rtt)
	g.slowStartTo(t, 20*seg)
	r.OnCongestion(g.now, r.CWnd())
	r.OnRecoveryEnd(g.now)

	f.round(false) // starts the stage: 14 ACKs
	g.round(false)
	// α_cubic = 3*0.3/1.7 = 0.5294 segments per window of ACKs; the window
	// grows during the round, so a little less.
	if got := f.segs() - 14; got < 0.50 || got > 0.5294 {
		t.Errorf("first round grew %.4f segments, want just under α_cubic = 0.5294", got)
	}
	var prev float64
	for i := 1; i < 100; i++ {
		prev = f.segs()
		f.round(false)
		g.round(false)
		if c.cwnd < c.wEst {
			t.Fatalf("round %d: cwnd %.2f below W_est %.2f", i, c.cwnd/seg, c.wEst/seg)
		}
	}
	tt := f.now.Sub(c.epochStart).Seconds()
	// Late rounds: α is 1, one segment per window.
	if got := f.segs() - prev; got < 0.95 || got > 1 {
		t.Errorf("last round grew %.3f segments, want about 1", got)
	}
	if w, wc := f.segs(), c.wCubic(tt+rtt.Seconds())/seg; w < 5*wc {
		t.Errorf("after 1 s cwnd %.1f, W_cubic(t+RTT) %.1f: want the Reno-friendly region to dominate", w, wc)
	}
	// Reno from 10 segments reaches 110; CUBIC from 14 with the slower
	// start reaches about 107: within 5%.
	if cw, rw := f.segs(), g.segs(); rw != 110 || math.Abs(cw-rw)/rw > 0.05 {
		t.Errorf("after 1 s cubic %.1f segments, newreno %.1f: want newreno 110 and cubic within 5%%", cw, rw)
	}
}

// A second loss below the previous W_max lowers W_max to
// cwnd*(1+β)/2 (RFC 9438 §4.7); a loss above it remembers cwnd.
func TestCubicFastConvergence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fc     bool
		grow   time.Duration // congestion avoidance before the second loss
		below  bool          // whether the second loss comes below W_max = 100
		factor float64       // W_max / cwnd at the second loss
	}{
		{"below W_max with fast convergence", true, 2 * time.Second, true, 0.85},
		{"below W_max without", false, 2 * time.Second, true, 1},
		{"above W_max", true, 7 * time.Second, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := cubicAfterLoss(t, 100, 100*time.Millisecond)
			c.FastConvergence = tc.fc
			f.until(tc.grow)
			w := c.cwnd
			if (w < 100*seg) != tc.below {
				t.Fatalf("cwnd %.2f segments at the second loss: on the wrong side of W_max", w/seg)
			}
			c.OnCongestion(f.now, c.CWnd())
			c.OnRecoveryEnd(f.now)
			if want := w * tc.factor; !near(c.wMax, want, 1e-6) {
				t.Errorf("W_max %.2f, want %.2f", c.wMax/seg, want/seg)
			}
			if want := math.Round(w * 0.7); float64(c.SSThresh()) != want || float64(c.CWnd()) != want {
				t.Errorf("ssthresh %d cwnd %d, want both %v", c.SSThresh(), c.CWnd(), want)
			}
			f.round(false)
			if want := math.Cbrt((w*tc.factor - math.Round(w*0.7)) / seg / 0.4); !near(c.k, want, 1e-9) {
				t.Errorf("K %.4f, want %.4f", c.k, want)
			}
		})
	}
	// The numbers for the first case: a loss at 100 segments, two seconds
	// of growth to W_cubic(2) = 0.4*(2-4.2172)^3+100 = 95.64 or so, then
	// W_max = 0.85*95.6 = 81.3 and K = cbrt((81.3-66.9)/0.4) = 3.30.
	c, f := cubicAfterLoss(t, 100, 100*time.Millisecond)
	f.until(2 * time.Second)
	if w := f.segs(); !near(w, 95.7, 0.5) {
		t.Fatalf("cwnd after 2 s %.2f segments, want about 95.7", w)
	}
	c.OnCongestion(f.now, c.CWnd())
	f.round(false)
	if !near(c.wMax/seg, 81.3, 0.5) || !near(c.k, 3.30, 0.05) {
		t.Errorf("W_max %.2f K %.3f, want about 81.3 and 3.30", c.wMax/seg, c.k)
	}
}

// A timeout drops cwnd to one SMSS with ssthresh = β*cwnd (RFC 9438 §4.8);
// slow start climbs back to ssthresh, and the stage after it starts with
// K = 0 and W_max = cwnd.
func TestCubicTimeout(t *testing.T) {
	c := NewCubic(Config{MSS: seg})
	f := newFlow(c, seg, 100*time.Millisecond)
	f.slowStartTo(t, 100*seg)
	c.OnTimeout(f.now, 100*seg)
	if c.CWnd() != seg || c.SSThresh() != 70*seg {
		t.Fatalf("after timeout cwnd %d ssthresh %d, want %d %d", c.CWnd(), c.SSThresh(), seg, 70*seg)
	}
	// The timer again before any ACK: ssthresh holds (RFC 5681 §3.1).
	c.OnTimeout(f.now, seg)
	if c.CWnd() != seg || c.SSThresh() != 70*seg {
		t.Fatalf("after second timeout cwnd %d ssthresh %d, want %d %d", c.CWnd(), c.SSThresh(), seg, 70*seg)
	}
	c.OnRecoveryEnd(f.now)
	if c.CWnd() != seg {
		t.Fatalf("OnRecoveryEnd after a timeout set cwnd %d", c.CWnd())
	}
	// Slow start: one SMSS per ACK, even for ACKs of two segments.
	for i := 2; i <= 70; i++ {
		f.now = f.now.Add(time.Millisecond)
		f.ack(2*seg, false)
		if c.CWnd() != i*seg {
			t.Fatalf("slow start ACK %d: cwnd %d, want %d", i-1, c.CWnd(), i*seg)
		}
	}
	if c.inEpoch {
		t.Fatal("congestion avoidance began below ssthresh")
	}
	f.round(false)
	if c.k != 0 || c.wMax != 70*seg || c.wEst < 70*seg {
		t.Fatalf("first stage after timeout: K %v W_max %v W_est %v, want 0, 70 segments, W_est from 70", c.k, c.wMax/seg, c.wEst/seg)
	}
	// With K = 0, W_cubic(t) = 70 + 0.4t^3 is flat at first (73.7 at
	// 2.1 s); W_est grows α_cubic per RTT, so after these 21 RTTs cwnd is
	// about 70 + 21*0.53 = 81.1.
	f.until(2 * time.Second)
	if w := f.segs(); w < 80.5 || w > 82 {
		t.Errorf("cwnd 2.1 s after slow start %.2f segments, want about 81.1", w)
	}
	// An ACK of new data ends the backoff: the next timeout is fresh.
	w := c.cwnd
	c.OnTimeout(f.now, c.CWnd())
	if want := int(math.Round(w * 0.7)); c.SSThresh() != want {
		t.Errorf("fresh timeout ssthresh %d, want %d", c.SSThresh(), want)
	}
}

// After a timeout the old W_max is forgotten even when it is above the
// new stage's window: K = 0 and W_max = cwnd_epoch (RFC 9438 §4.8), not
// a concave climb back toward the W_max of an earlier loss.
func TestCubicTimeoutForgetsWMax(t *testing.T) {
	c, f := cubicAfterLoss(t, 100, 100*time.Millisecond) // W_max 100, cwnd 70
	f.until(time.Second)
	w := c.cwnd
	c.OnTimeout(f.now, c.CWnd())
	ss := c.SSThresh()
	if want := int(math.Round(w * 0.7)); ss != want {
		t.Fatalf("ssthresh %d, want %d", ss, want)
	}
	for !c.inEpoch {
		f.now = f.now.Add(time.Millisecond)
		f.ack(seg, false)
	}
	// Slow start ended one SMSS-step past ssthresh, at 62 segments; the
	// stage began with the ACK after.
	if c.k != 0 || c.wMax != 62*seg {
		t.Errorf("K %.3f W_max %.2f, want 0 and 62 (not cbrt((100-62)/0.4) and 100)", c.k, c.wMax/seg)
	}
}

// A timeout in fast recovery ends it; its end must not lift cwnd.
func TestCubicTimeoutDuringRecovery(t *testing.T) {
	c, f := cubicAfterLoss(t, 100, 100*time.Millisecond)
	c.OnCongestion(f.now, c.CWnd()) // 70 -> 49
	c.OnTimeout(f.now, c.CWnd())    // 49 -> 34.3
	c.OnRecoveryEnd(f.now)
	if c.CWnd() != seg || c.SSThresh() != 34300 {
		t.Errorf("cwnd %d ssthresh %d, want %d 34300", c.CWnd(), c.SSThresh(), seg)
	}
}

// Application-limited ACKs grow nothing, and their time is not growth
// time (RFC 9438 §4.2, §5.8).
func TestCubicAppLimited(t *testing.T) {
	t.Run("slow start", func(t *testing.T) {
		c := NewCubic(Config{MSS: seg})
		f := newFlow(c, seg, 50*time.Millisecond)
		f.rounds(10, true)
		if c.CWnd() != 10*seg {
			t.Errorf("cwnd %d after app-limited slow start, want %d", c.CWnd(), 10*seg)
		}
	})

	const rtt = 100 * time.Millisecond
	// ref runs 2 s of congestion avoidance straight; the others pause in
	// the middle.
	_, ref := cubicAfterLoss(t, 100, rtt)
	ref.rounds(20, false)
	want := ref.segs()

	t.Run("app-limited ACKs", func(t *testing.T) {
		c, f := cubicAfterLoss(t, 100, rtt)
		f.rounds(10, false)
		before := c.cwnd
		f.rounds(50, true) // 5 s of app-limited sending
		if c.cwnd != before {
			t.Fatalf("app-limited ACKs moved cwnd %.3f -> %.3f", before/seg, c.cwnd/seg)
		}
		f.rounds(10, false)
		// Counting the 5 s would put t at 7 s, past K = 4.2 s, with cwnd
		// about 101; without them t is 2 s and cwnd is the reference's.
		if got := f.segs(); !near(got, want, 0.05) {
			t.Errorf("cwnd %.3f after the app-limited spell, want %.3f as without it", got, want)
		}
	})

	t.Run("pipe drained", func(t *testing.T) {
		c, f := cubicAfterLoss(t, 100, rtt)
		f.rounds(10, false)
		// The last ACK before the pause acknowledges everything in
		// flight; the sender then has nothing to send for 5 s.
		c.OnAck(Ack{Now: f.now, Acked: seg, InFlight: seg, RTT: rtt, SRTT: rtt})
		before := c.cwnd
		// Data sent at the end of the pause is acknowledged an RTT later.
		f.now = f.now.Add(5*time.Second + rtt)
		f.rounds(10, false)
		// The segment sent at the end of the pause was an RTT in flight,
		// so t is 2.1 s rather than 2 s: 0.6 segments more than the
		// reference. Counting the pause would put cwnd near 101.
		if got := f.segs(); !near(got, want, 1) || c.cwnd <= before {
			t.Errorf("cwnd %.3f after an empty pipe, want about %.3f as without the pause", got, want)
		}
	})

	t.Run("idle", func(t *testing.T) {
		c, f := cubicAfterLoss(t, 100, rtt)
		f.rounds(10, false)
		wmax, ssthresh := c.wMax, c.SSThresh()
		f.now = f.now.Add(10 * time.Second)
		c.OnIdle(f.now)
		// RFC 5681 §4.1: cwnd = min(IW, cwnd); ssthresh and W_max stay.
		if c.CWnd() != 10*seg || c.SSThresh() != ssthresh || c.wMax != wmax || c.inEpoch {
			t.Fatalf("after idle cwnd %d ssthresh %d W_max %v stage %v, want %d %d %v false",
				c.CWnd(), c.SSThresh(), c.wMax/seg, c.inEpoch, 10*seg, ssthresh, wmax/seg)
		}
		f.slowStartTo(t, ssthresh)
		f.round(false)
		// The new stage starts from W_max with K = cbrt((100-70)/0.4).
		if !near(c.k, math.Cbrt(75), 1e-9) {
			t.Errorf("K after idle %.4f, want %.4f", c.k, math.Cbrt(75))
		}
	})
}

// The RTT the formulas use: SRTT, else MinRTT, else 100 ms.
func TestCubicRTTChoice(t *testing.T) {
	for _, tc := range []struct {
		name      string
		srtt, min time.Duration
		rtt       float64 // seconds: the RTT in W_cubic(t+RTT)
	}{
		{"srtt", 300 * time.Millisecond, 50 * time.Millisecond, 0.3},
		{"min rtt", 0, 50 * time.Millisecond, 0.05},
		{"none", 0, 0, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := cubicAfterLoss(t, 1000, 0)
			c.OnAck(Ack{Now: f.now, Acked: seg, InFlight: c.CWnd(), SRTT: tc.srtt, MinRTT: tc.min})
			// One second on, W_cubic is well above W_est; one ACK of
			// one segment adds (target-cwnd)/cwnd segments.
			before := c.cwnd
			c.OnAck(Ack{Now: f.now.Add(time.Second), Acked: seg, InFlight: c.CWnd(), SRTT: tc.srtt, MinRTT: tc.min})
			target := c.wCubic(1 + tc.rtt)
			if target < c.wEst {
				t.Fatal("in the Reno-friendly region")
			}
			want := before + (target-before)/before*seg
			if !near(c.cwnd, want, 1e-6) {
				t.Errorf("cwnd %.4f, want %.4f", c.cwnd, want)
			}
		})
	}
}

// target is at most 1.5*cwnd (RFC 9438 §4.2): long after the epoch began,
// one window of ACKs grows cwnd by at most half.
func TestCubicTargetBound(t *testing.T) {
	c, f := cubicAfterLoss(t, 100, 100*time.Millisecond)
	f.round(false)
	f.now = f.now.Add(time.Hour) // not app-limited: the window was full
	before := c.cwnd
	n := c.CWnd() / seg
	for range n {
		f.ack(seg, false)
	}
	// Each ACK adds (1.5cwnd-cwnd)/cwnd*SMSS = SMSS/2, n of them.
	if want := before + float64(n)*seg/2; !near(c.cwnd, want, 1e-6) {
		t.Errorf("cwnd %.2f, want %.2f", c.cwnd/seg, want/seg)
	}
}
