package cc

import (
	"math"
	"testing"
	"time"
)

// t0 is the simulated clock's start.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// flow drives an Algorithm with a simulated sender that keeps its window
// full: every round trip it has cwnd bytes in flight and gets them back as
// one ACK per SMSS, the ACKs spread evenly over the RTT.
type flow struct {
	a   Algorithm
	mss int
	rtt time.Duration
	now time.Time
}

func newFlow(a Algorithm, mss int, rtt time.Duration) *flow {
	return &flow{a: a, mss: mss, rtt: rtt, now: t0}
}

// ack delivers one ACK of n bytes at the current time.
func (f *flow) ack(n int, appLimited bool) {
	f.a.OnAck(Ack{
		Now:        f.now,
		Acked:      n,
		InFlight:   f.a.CWnd(),
		RTT:        f.rtt,
		SRTT:       f.rtt,
		MinRTT:     f.rtt,
		AppLimited: appLimited,
	})
}

// round acknowledges one window, one SMSS per ACK, over one RTT.
func (f *flow) round(appLimited bool) {
	n := max(f.a.CWnd()/f.mss, 1)
	step := f.rtt / time.Duration(n)
	for i := 0; i < n; i++ {
		f.now = f.now.Add(step)
		f.ack(f.mss, appLimited)
	}
}

// rounds runs n rounds.
func (f *flow) rounds(n int, appLimited bool) {
	for range n {
		f.round(appLimited)
	}
}

// until runs rounds until d has passed on the simulated clock.
func (f *flow) until(d time.Duration) {
	end := f.now.Add(d)
	for f.now.Before(end) {
		f.round(false)
	}
}

// slowStartTo acknowledges single segments until cwnd reaches w bytes; in
// slow start each grows cwnd by exactly one SMSS.
func (f *flow) slowStartTo(t *testing.T, w int) {
	t.Helper()
	for f.a.CWnd() < w {
		f.now = f.now.Add(time.Millisecond)
		f.ack(f.mss, false)
	}
	if f.a.CWnd() != w {
		t.Fatalf("slow start reached cwnd %d, want exactly %d", f.a.CWnd(), w)
	}
}

// segs is a window in segments.
func (f *flow) segs() float64 { return float64(f.a.CWnd()) / float64(f.mss) }

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }
