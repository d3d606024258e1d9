package cc

import "time"

// NewReno is the standard congestion control of RFC 5681 with the byte
// counting of RFC 3465; the fast recovery of RFC 6582 and RFC 6675 is
// carried out by the connection, which tells NewReno when it starts and
// ends.
type NewReno struct {
	mss      int  // SMSS in bytes
	iw       int  // initial window in bytes
	cwnd     int  // congestion window in bytes
	ssthresh int  // slow-start threshold in bytes
	acc      int  // bytes acknowledged toward the next congestion-avoidance increase
	recovery bool // between OnCongestion and OnRecoveryEnd
	backoff  bool // a timeout with no new data acknowledged since
}

// NewNewReno returns NewReno set up for cfg. The window starts at the
// initial window, cfg.InitialWindow segments (RFC 5681 §3.1, RFC 6928),
// and ssthresh starts arbitrarily high (RFC 5681 §3.1).
func NewNewReno(cfg Config) *NewReno {
	mss, iw := sizes(cfg)
	return &NewReno{mss: mss, iw: iw, cwnd: iw, ssthresh: maxWindow}
}

// Name returns "newreno".
func (r *NewReno) Name() string { return "newreno" }

// CWnd returns the congestion window in bytes. It is never less than one
// SMSS.
func (r *NewReno) CWnd() int { return r.cwnd }

// SSThresh returns the slow-start threshold in bytes.
func (r *NewReno) SSThresh() int { return r.ssthresh }

// OnAck grows the window for newly acknowledged data. While cwnd is below
// ssthresh it is slow start: cwnd grows by the bytes acknowledged, at most
// one SMSS per ACK (RFC 5681 §3.1, equation 2; RFC 3465 §2.2 with L = 1
// SMSS). Otherwise it is congestion avoidance: the acknowledged bytes are
// counted, and each time they reach a full cwnd, that much is taken off the
// count and cwnd grows by one SMSS, about one SMSS per round trip (RFC 3465
// §2.1, RFC 5681 §3.1). An application-limited ACK grows nothing: the
// window was not what limited the sender (RFC 7661 §4.3).
func (r *NewReno) OnAck(ev Ack) {
	if ev.Acked <= 0 {
		return
	}
	// New data is through: a later timeout is a fresh one (RFC 5681 §3.1).
	r.backoff = false
	if ev.AppLimited {
		return
	}
	acked := min(ev.Acked, maxWindow)
	if r.cwnd < r.ssthresh {
		r.cwnd = min(r.cwnd+min(acked, r.mss), maxWindow)
		return
	}
	r.acc += acked
	if r.acc >= r.cwnd {
		r.acc -= r.cwnd
		r.cwnd = min(r.cwnd+r.mss, maxWindow)
	}
	// One ACK covering several windows earns one increase and at most
	// the credit toward one more, keeping the growth near one SMSS per
	// round trip (RFC 5681 §3.1).
	r.acc = min(r.acc, r.cwnd)
}

// OnCongestion halves the window when fast recovery starts: ssthresh =
// max(FlightSize/2, 2*SMSS) (RFC 5681 §3.2 step 2, equation 4), and the
// recovery runs at cwnd = ssthresh (RFC 6675 §5 step 4.2), without the
// inflation of RFC 5681 §3.2 that the pipe estimate makes unnecessary.
// inFlight is the FlightSize: the bytes sent and not yet acknowledged.
func (r *NewReno) OnCongestion(now time.Time, inFlight int) {
	r.ssthresh = halfFlight(inFlight, r.mss)
	r.cwnd = r.ssthresh
	r.acc = 0
	r.recovery = true
	r.backoff = false
}

// OnRecoveryEnd sets cwnd to ssthresh as fast recovery ends with a full
// acknowledgment (RFC 6582 §3.2 step 6, option 2). It does nothing unless
// OnCongestion began a recovery that no timeout has since ended: a
// timeout ends the recovery (RFC 6675 §5.1) and its window must stand.
func (r *NewReno) OnRecoveryEnd(now time.Time) {
	if !r.recovery {
		return
	}
	r.recovery = false
	r.cwnd = r.ssthresh
	r.acc = 0
}

// OnTimeout sets ssthresh = max(FlightSize/2, 2*SMSS) and cwnd to the loss
// window of one SMSS (RFC 5681 §3.1, equation 4 and the loss window LW).
// When the timer expires again before any new data is acknowledged, the
// segment is being retransmitted by the timer again, and ssthresh is held
// as it is (RFC 5681 §3.1) rather than falling to 2*SMSS from a flight of
// one segment. A timeout ends any fast recovery (RFC 6675 §5.1).
func (r *NewReno) OnTimeout(now time.Time, inFlight int) {
	if !r.backoff {
		r.ssthresh = halfFlight(inFlight, r.mss)
	}
	r.backoff = true
	r.cwnd = r.mss
	r.acc = 0
	r.recovery = false
}

// OnIdle restarts the window after an idle period longer than the RTO:
// cwnd = min(IW, cwnd), the restart window of RFC 5681 §4.1. ssthresh is
// kept, so slow start climbs back to it.
func (r *NewReno) OnIdle(now time.Time) {
	r.cwnd = min(r.cwnd, r.iw)
	r.acc = 0
}

// halfFlight is RFC 5681 equation 4: max(FlightSize/2, 2*SMSS), kept
// within maxWindow.
func halfFlight(inFlight, mss int) int {
	return max(min(inFlight/2, maxWindow), 2*mss)
}
