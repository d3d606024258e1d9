package cc

import (
	"math"
	"time"
)

// CUBIC's constants (RFC 9438 §4.1.1).
const (
	cubicC     = 0.4                                   // C, in segments per second cubed (§5.1: C SHOULD be 0.4)
	cubicBeta  = 0.7                                   // β_cubic, the multiplicative decrease factor (§4.6)
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta) // α_cubic, the Reno-friendly additive increase (§4.3)
	cubicFC    = (1 + cubicBeta) / 2                   // the fast convergence factor (§4.7)
	cubicBound = 1.5                                   // target is at most 1.5*cwnd (§4.2)
)

// Cubic is the CUBIC congestion control of RFC 9438: after a congestion
// event the window follows a cubic function of the time since congestion
// avoidance began, flattening out at the window where the loss happened
// and then probing beyond it, never growing slower than Reno would.
//
// Windows are kept in bytes as float64 so that the fractional growth of
// each ACK is not lost; the RFC's formulas, which are in segments, divide
// by the SMSS where they must (RFC 9438 §4.1).
//
// The multiplicative decrease scales cwnd rather than FlightSize, as Linux
// and Windows do and as RFC 9438 §4.6 allows provided cwnd cannot grow
// while the sender leaves it unused: the connection must therefore mark
// every ACK of data sent while application-limited (Ack.AppLimited).
type Cubic struct {
	// FastConvergence lowers W_max further when a congestion event comes
	// before the window regained the previous W_max, releasing bandwidth
	// to newer flows (RFC 9438 §4.7). NewCubic turns it on, as the RFC
	// says it SHOULD be; it SHOULD be off for a flow known to be alone on
	// its path.
	FastConvergence bool

	mss      float64 // SMSS in bytes
	mssBytes int     // the same, as an int
	iw       float64 // initial window in bytes

	cwnd      float64 // congestion window
	ssthresh  int     // slow-start threshold
	cwndPrior float64 // cwnd when ssthresh was last set (§4.1.2)
	wMax      float64 // W_max: the window the cubic function plateaus at
	k         float64 // K in seconds: when W_cubic reaches W_max (§4.2)
	wEst      float64 // W_est: Reno's window estimate (§4.3)

	inEpoch    bool      // a congestion avoidance stage is under way
	epochStart time.Time // t_epoch, moved later by application-limited time

	lastAck     time.Time // when OnAck was last called
	haveLastAck bool
	pipeEmptied bool // the last ACK acknowledged everything in flight

	afterTimeout bool // the next stage is the first after a timeout (§4.8)
	recovery     bool // between OnCongestion and OnRecoveryEnd
	backoff      bool // a timeout with no new data acknowledged since
}

// NewCubic returns CUBIC set up for cfg, with fast convergence on. The
// window starts at the initial window, cfg.InitialWindow segments
// (RFC 6928), and ssthresh starts arbitrarily high (RFC 5681 §3.1), so the
// connection begins in slow start.
func NewCubic(cfg Config) *Cubic {
	mss, iw := sizes(cfg)
	return &Cubic{
		FastConvergence: true,
		mss:             float64(mss),
		mssBytes:        mss,
		iw:              float64(iw),
		cwnd:            float64(iw),
		ssthresh:        maxWindow,
	}
}

// Name returns "cubic".
func (c *Cubic) Name() string { return "cubic" }

// CWnd returns the congestion window in bytes, rounded down. It is never
// less than one SMSS.
func (c *Cubic) CWnd() int { return max(int(c.cwnd), c.mssBytes) }

// SSThresh returns the slow-start threshold in bytes.
func (c *Cubic) SSThresh() int { return c.ssthresh }

// OnAck grows the window for newly acknowledged data.
//
// Below ssthresh it is the slow start of RFC 5681 §3.1, which RFC 9438
// §4.10 allows in place of HyStart++: cwnd grows by the bytes
// acknowledged, at most one SMSS per ACK.
//
// At or above ssthresh it is congestion avoidance (RFC 9438 §4.2-§4.5).
// The first such ACK after a congestion event starts the stage: t_epoch is
// now, cwnd_epoch and W_est are cwnd, and K = cbrt((W_max - cwnd_epoch)/C)
// (§4.2, equation 2); after a timeout, or when cwnd already reaches W_max,
// K is 0 and W_max is cwnd (§4.8). On every ACK W_est grows by
// α_cubic*segments_acked/cwnd, α_cubic becoming 1 once W_est reaches
// cwnd_prior (§4.3, equation 4). If W_cubic(t) is below W_est the window
// is in the Reno-friendly region and follows W_est (§4.3); otherwise it
// grows toward target = W_cubic(t+RTT), bounded to [cwnd, 1.5*cwnd], by
// (target-cwnd)/cwnd per segment acknowledged, in the concave region below
// W_max and the convex region above it alike (§4.2, §4.4, §4.5). RTT is
// the smoothed RTT, else the least seen, else 100 ms.
//
// An application-limited ACK grows nothing, and the time since the
// previous ACK is taken out of t, as is any time the pipe stood empty
// before the data this ACK acknowledges was sent: t must not count
// periods in which the application, not the window, held the sender back
// (RFC 9438 §4.2 and §5.8).
func (c *Cubic) OnAck(ev Ack) {
	if ev.Acked <= 0 {
		return
	}
	// New data is through: a later timeout is a fresh one (RFC 5681 §3.1).
	c.backoff = false

	var gap time.Duration
	if c.haveLastAck {
		gap = max(ev.Now.Sub(c.lastAck), 0)
	}
	emptied := c.pipeEmptied
	c.lastAck, c.haveLastAck = ev.Now, true
	c.pipeEmptied = ev.Acked >= ev.InFlight
	rtt := rttOf(&ev)
	if c.inEpoch {
		switch {
		case ev.AppLimited:
			// The sender had less to send than the window allowed
			// all through the gap.
			c.epochStart = c.epochStart.Add(gap)
		case emptied:
			// Nothing was in flight after the previous ACK; the data
			// acknowledged now went out about one RTT ago. What lies
			// between was idle.
			sample := ev.RTT
			if sample <= 0 {
				sample = rtt
			}
			if idle := gap - sample; idle > 0 {
				c.epochStart = c.epochStart.Add(idle)
			}
		}
	}
	if ev.AppLimited {
		return
	}

	acked := float64(ev.Acked)
	if c.cwnd < float64(c.ssthresh) {
		c.cwnd = min(c.cwnd+min(acked, c.mss), maxWindow)
		return
	}

	if !c.inEpoch {
		c.startEpoch(ev.Now)
	}
	t := max(ev.Now.Sub(c.epochStart).Seconds(), 0)

	alpha := cubicAlpha
	if c.wEst >= c.cwndPrior {
		alpha = 1
	}
	// W_est += α_cubic * segments_acked / cwnd, in segments; times the
	// SMSS for bytes: α_cubic * acked / cwnd * SMSS.
	c.wEst = min(c.wEst+alpha*acked/c.cwnd*c.mss, maxWindow)

	if c.wCubic(t) < c.wEst {
		// Reno-friendly region (§4.3). cwnd never falls on an ACK: the
		// cubic region may have carried it past W_est already.
		c.cwnd = max(c.cwnd, c.wEst)
		return
	}
	target := min(max(c.wCubic(t+rtt.Seconds()), c.cwnd), cubicBound*c.cwnd)
	// (target - cwnd)/cwnd segments per segment acknowledged; in bytes
	// the SMSS cancels out.
	c.cwnd = min(c.cwnd+(target-c.cwnd)/c.cwnd*acked, maxWindow)
}

// startEpoch begins a congestion avoidance stage at now (RFC 9438 §4.2,
// §4.3, §4.8).
func (c *Cubic) startEpoch(now time.Time) {
	c.inEpoch = true
	c.epochStart = now
	c.wEst = c.cwnd
	if c.afterTimeout || c.wMax <= c.cwnd {
		// After a timeout, or with nothing left to regain (the window
		// already at or past W_max), the cubic function starts from
		// its inflection point at the current window (§4.8).
		c.wMax = c.cwnd
		c.k = 0
	} else {
		c.k = math.Cbrt((c.wMax - c.cwnd) / c.mss / cubicC)
	}
	c.afterTimeout = false
}

// wCubic is W_cubic(t) = C*(t-K)^3 + W_max (RFC 9438 §4.2, equation 1), in
// bytes.
func (c *Cubic) wCubic(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d*c.mss + c.wMax
}

// reduce sets ssthresh by the multiplicative decrease of RFC 9438 §4.6,
// ssthresh = max(cwnd*β_cubic, 2*SMSS), and remembers the cwnd it came
// from as cwnd_prior. Its callers set the new cwnd.
func (c *Cubic) reduce() {
	c.cwndPrior = c.cwnd
	c.ssthresh = max(int(math.Round(c.cwnd*cubicBeta)), 2*c.mssBytes)
}

// OnCongestion is CUBIC's response to a loss found by duplicate ACKs or
// SACK as fast recovery starts. First W_max remembers the window: with
// fast convergence, a loss before the window regained the previous W_max
// sets W_max = cwnd*(1+β_cubic)/2, otherwise W_max = cwnd (RFC 9438
// §4.7). Then ssthresh = max(cwnd*β_cubic, 2*SMSS) and cwnd = ssthresh
// (§4.6), and the congestion avoidance stage ends, so the next one starts
// at the first ACK after recovery. inFlight is not used: see the type's
// comment.
func (c *Cubic) OnCongestion(now time.Time, inFlight int) {
	if c.FastConvergence && c.cwnd < c.wMax {
		c.wMax = c.cwnd * cubicFC
	} else {
		c.wMax = c.cwnd
	}
	c.reduce()
	c.cwnd = float64(c.ssthresh)
	c.inEpoch = false
	c.afterTimeout = false
	c.recovery = true
	c.backoff = false
}

// OnRecoveryEnd leaves cwnd at ssthresh as fast recovery ends (RFC 6582
// §3.2 step 6, option 2; RFC 9438 §4.6). It does nothing unless
// OnCongestion began a recovery that no timeout has since ended: a
// timeout ends the recovery (RFC 6675 §5.1) and its window must stand.
func (c *Cubic) OnRecoveryEnd(now time.Time) {
	if !c.recovery {
		return
	}
	c.recovery = false
	c.cwnd = float64(c.ssthresh)
}

// OnTimeout follows Reno for cwnd, which falls to one SMSS (RFC 5681
// §3.1), but sets ssthresh = max(cwnd*β_cubic, 2*SMSS) as for a
// congestion event (RFC 9438 §4.8, §4.6). The congestion avoidance stage
// ends; the first one after the timeout starts with K = 0 and W_max =
// cwnd_epoch (§4.8). A timeout again before any new data is acknowledged
// holds ssthresh as it is (RFC 5681 §3.1). A timeout ends any fast
// recovery (RFC 6675 §5.1).
func (c *Cubic) OnTimeout(now time.Time, inFlight int) {
	if !c.backoff {
		c.reduce()
	}
	c.backoff = true
	c.cwnd = c.mss
	c.inEpoch = false
	c.afterTimeout = true
	c.recovery = false
}

// OnIdle restarts the window after an idle period longer than the RTO:
// cwnd = min(IW, cwnd), the restart window of RFC 5681 §4.1. The
// congestion avoidance stage ends too, so the idle time never counts in t
// (RFC 9438 §5.8): the next stage starts afresh from W_max, which is kept.
func (c *Cubic) OnIdle(now time.Time) {
	c.cwnd = min(c.cwnd, c.iw)
	c.inEpoch = false
}
