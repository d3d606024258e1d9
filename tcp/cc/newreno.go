package cc

import "time"

// NewReno is the standard congestion control of RFC 5681, with the fast
// recovery of RFC 6582 carried out by the connection.
type NewReno struct {
	mss      int
	iw       int // initial window in bytes
	cwnd     int
	ssthresh int
	acc      int // bytes acknowledged toward the next congestion-avoidance increase
}

// NewNewReno returns NewReno set up for cfg.
func NewNewReno(cfg Config) *NewReno {
	r := &NewReno{mss: max(cfg.MSS, 1)}
	iw := cfg.InitialWindow
	if iw <= 0 {
		iw = 10
	}
	r.iw = iw * r.mss
	r.cwnd = r.iw
	// RFC 5681 §3.1: "The initial value of ssthresh SHOULD be set
	// arbitrarily high".
	r.ssthresh = 1 << 30
	return r
}

// Name returns "newreno".
func (r *NewReno) Name() string { return "newreno" }

// CWnd returns the congestion window.
func (r *NewReno) CWnd() int { return r.cwnd }

// SSThresh returns the slow-start threshold.
func (r *NewReno) SSThresh() int { return r.ssthresh }

// OnAck grows the window: by the bytes acknowledged, at most one SMSS per
// ACK, in slow start (RFC 5681 §3.1, RFC 3465 with L=1); by one SMSS per
// window's worth of acknowledged bytes in congestion avoidance.
func (r *NewReno) OnAck(ev Ack) {
	if ev.AppLimited {
		return
	}
	if r.cwnd < r.ssthresh {
		r.cwnd += min(ev.Acked, r.mss)
		return
	}
	r.acc += ev.Acked
	if r.acc >= r.cwnd {
		r.acc -= r.cwnd
		r.cwnd += r.mss
	}
}

// OnCongestion halves the window: ssthresh = max(FlightSize/2, 2*SMSS)
// (RFC 5681 §3.2, equation 4), and recovery runs at cwnd = ssthresh
// (RFC 6675 §5, RFC 6582 §3.2 step 2 without the inflation the pipe
// estimate makes unnecessary).
func (r *NewReno) OnCongestion(now time.Time, inFlight int) {
	r.ssthresh = max(inFlight/2, 2*r.mss)
	r.cwnd = r.ssthresh
	r.acc = 0
}

// OnRecoveryEnd leaves the window at ssthresh (RFC 6582 §3.2 step 6).
func (r *NewReno) OnRecoveryEnd(now time.Time) { r.cwnd = r.ssthresh }

// OnTimeout sets ssthresh = max(FlightSize/2, 2*SMSS) and cwnd to the loss
// window of one segment (RFC 5681 §3.1).
func (r *NewReno) OnTimeout(now time.Time, inFlight int) {
	r.ssthresh = max(inFlight/2, 2*r.mss)
	r.cwnd = r.mss
	r.acc = 0
}

// OnIdle restarts from the initial window after an idle period (RFC 5681
// §4.1).
func (r *NewReno) OnIdle(now time.Time) { r.cwnd = min(r.cwnd, r.iw) }
