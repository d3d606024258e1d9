package cc

import (
	"testing"
	"time"
)

func TestNewRenoInitial(t *testing.T) {
	for _, tc := range []struct {
		name          string
		cfg           Config
		cwnd, ssthres int
	}{
		{"defaults", Config{MSS: 1460}, 14600, maxWindow},
		{"iw 4", Config{MSS: 1000, InitialWindow: 4}, 4000, maxWindow},
		{"no MSS means 536", Config{}, 5360, maxWindow},
		{"MSS beyond the option's 16 bits", Config{MSS: 1 << 20, InitialWindow: 1}, maxMSS, maxWindow},
		{"huge IW is capped", Config{MSS: 1000, InitialWindow: 1 << 40}, maxWindow / 1000 * 1000, maxWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewNewReno(tc.cfg)
			if r.CWnd() != tc.cwnd || r.SSThresh() != tc.ssthres {
				t.Errorf("cwnd %d ssthresh %d, want %d %d", r.CWnd(), r.SSThresh(), tc.cwnd, tc.ssthres)
			}
		})
	}
}

// Slow start: cwnd += min(N, SMSS) per ACK (RFC 5681 §3.1, RFC 3465 L=1).
func TestNewRenoSlowStart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		acked      int
		appLimited bool
		want       int // cwnd after, from 10000
	}{
		{"partial segment", 500, false, 10500},
		{"one segment", 1000, false, 11000},
		{"delayed ACK of two segments", 2000, false, 11000},
		{"stretch ACK of 7 segments", 7000, false, 11000},
		{"nothing acknowledged", 0, false, 10000},
		{"negative", -5, false, 10000},
		{"application-limited", 1000, true, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewNewReno(Config{MSS: 1000})
			r.OnAck(Ack{Now: t0, Acked: tc.acked, InFlight: 10000, AppLimited: tc.appLimited})
			if r.CWnd() != tc.want {
				t.Errorf("cwnd %d, want %d", r.CWnd(), tc.want)
			}
		})
	}
}

// Congestion avoidance: one SMSS per cwnd of acknowledged bytes (RFC 3465
// §2.1).
func TestNewRenoCongestionAvoidance(t *testing.T) {
	r := NewNewReno(Config{MSS: 1000})
	r.OnCongestion(t0, 40000)
	r.OnRecoveryEnd(t0)
	if r.CWnd() != 20000 || r.SSThresh() != 20000 {
		t.Fatalf("after recovery cwnd %d ssthresh %d, want 20000 20000", r.CWnd(), r.SSThresh())
	}
	now := t0
	ack := func(n int) {
		now = now.Add(time.Millisecond)
		r.OnAck(Ack{Now: now, Acked: n, InFlight: r.CWnd()})
	}
	for i := 1; i <= 19; i++ {
		ack(1000)
		if r.CWnd() != 20000 {
			t.Fatalf("after %d of 20 segments cwnd %d, want still 20000", i, r.CWnd())
		}
	}
	ack(1000)
	if r.CWnd() != 21000 {
		t.Fatalf("after a window of 20 segments cwnd %d, want 21000", r.CWnd())
	}
	// The next increase takes 21 segments: 10 round trips of full windows
	// add 10 SMSS.
	for w := 21; w < 31; w++ {
		for range w {
			ack(1000)
		}
		if r.CWnd() != (w+1)*1000 {
			t.Fatalf("after a window of %d segments cwnd %d, want %d", w, r.CWnd(), (w+1)*1000)
		}
	}
	// Delayed ACKs (two segments each) give the same growth per window.
	for range 31 * 1000 / 2000 {
		ack(2000)
	}
	ack(1000)
	if r.CWnd() != 32000 {
		t.Fatalf("after 31 segments in delayed ACKs cwnd %d, want 32000", r.CWnd())
	}
	// One ACK of five windows earns one increase, not five.
	ack(5 * r.CWnd())
	if r.CWnd() != 33000 {
		t.Fatalf("after a stretch ACK cwnd %d, want 33000", r.CWnd())
	}
	// It leaves credit toward one more increase, not four: the next
	// segment completes it, and then a full window is needed again.
	ack(1000)
	if r.CWnd() != 34000 {
		t.Fatalf("after the stretch ACK's credit cwnd %d, want 34000", r.CWnd())
	}
	for range 32 {
		ack(1000)
	}
	if r.CWnd() != 34000 {
		t.Fatalf("cwnd %d before a full window after the credit, want 34000", r.CWnd())
	}
	ack(1000)
	if r.CWnd() != 35000 {
		t.Fatalf("cwnd %d after a full window, want 35000", r.CWnd())
	}
	// Application-limited ACKs count nothing.
	for range 100 {
		r.OnAck(Ack{Now: now, Acked: 1000, AppLimited: true})
	}
	if r.CWnd() != 35000 {
		t.Fatalf("after app-limited ACKs cwnd %d, want 35000", r.CWnd())
	}
}

// ssthresh = max(FlightSize/2, 2*SMSS) (RFC 5681 equation 4).
func TestNewRenoOnCongestion(t *testing.T) {
	for _, tc := range []struct {
		inFlight, want int
	}{
		{40000, 20000},
		{15001, 7500},
		{5000, 2500},
		{3999, 2000},
		{1000, 2000},
		{0, 2000},
		{-1, 2000},
		{1 << 40, maxWindow},
	} {
		r := NewNewReno(Config{MSS: 1000})
		r.OnCongestion(t0, tc.inFlight)
		if r.SSThresh() != tc.want || r.CWnd() != tc.want {
			t.Errorf("inFlight %d: ssthresh %d cwnd %d, want both %d", tc.inFlight, r.SSThresh(), r.CWnd(), tc.want)
		}
		r.OnRecoveryEnd(t0)
		if r.CWnd() != tc.want {
			t.Errorf("inFlight %d: after recovery cwnd %d, want %d", tc.inFlight, r.CWnd(), tc.want)
		}
	}
}

func TestNewRenoTimeout(t *testing.T) {
	r := NewNewReno(Config{MSS: 1000})
	f := newFlow(r, 1000, 50*time.Millisecond)
	f.slowStartTo(t, 60000)
	r.OnTimeout(f.now, 60000)
	if r.CWnd() != 1000 || r.SSThresh() != 30000 {
		t.Fatalf("after timeout cwnd %d ssthresh %d, want 1000 30000", r.CWnd(), r.SSThresh())
	}
	// The timer again, with one segment in flight: ssthresh holds
	// (RFC 5681 §3.1), it does not fall to 2*SMSS.
	r.OnTimeout(f.now, 1000)
	if r.CWnd() != 1000 || r.SSThresh() != 30000 {
		t.Fatalf("after second timeout cwnd %d ssthresh %d, want 1000 30000", r.CWnd(), r.SSThresh())
	}
	// No recovery is running, so its end changes nothing.
	r.OnRecoveryEnd(f.now)
	if r.CWnd() != 1000 {
		t.Fatalf("OnRecoveryEnd after a timeout set cwnd %d, want 1000", r.CWnd())
	}
	// Slow start back to ssthresh, one SMSS per ACK.
	f.slowStartTo(t, 30000)
	// Then congestion avoidance: a window of ACKs adds one SMSS.
	for range 30 {
		f.ack(1000, false)
	}
	if r.CWnd() != 31000 {
		t.Fatalf("after one window in congestion avoidance cwnd %d, want 31000", r.CWnd())
	}
	// New data acknowledged, so the next timeout is fresh.
	r.OnTimeout(f.now, 8000)
	if r.SSThresh() != 4000 {
		t.Fatalf("fresh timeout ssthresh %d, want 4000", r.SSThresh())
	}
}

// A timeout inside fast recovery ends it (RFC 6675 §5.1): the recovery's
// end must not raise cwnd back to ssthresh.
func TestNewRenoTimeoutDuringRecovery(t *testing.T) {
	r := NewNewReno(Config{MSS: 1000})
	r.OnCongestion(t0, 40000)
	r.OnTimeout(t0, 40000)
	r.OnRecoveryEnd(t0)
	if r.CWnd() != 1000 || r.SSThresh() != 20000 {
		t.Fatalf("cwnd %d ssthresh %d, want 1000 20000", r.CWnd(), r.SSThresh())
	}
}

// After an idle period cwnd = min(IW, cwnd) (RFC 5681 §4.1).
func TestNewRenoIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		cwnd int
		want int
	}{
		{"large window restarts", 50000, 10000},
		{"window at IW", 10000, 10000},
		{"small window kept", 3000, 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewNewReno(Config{MSS: 1000})
			r.OnCongestion(t0, 2*tc.cwnd) // cwnd = ssthresh = tc.cwnd
			r.OnRecoveryEnd(t0)
			r.OnIdle(t0)
			if r.CWnd() != tc.want || r.SSThresh() != tc.cwnd {
				t.Errorf("cwnd %d ssthresh %d, want %d %d", r.CWnd(), r.SSThresh(), tc.want, tc.cwnd)
			}
		})
	}
}
