package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/seqnum"
)

// The retransmission timer of RFC 6298: round-trip samples feed SRTT and
// RTTVAR, which give the RTO.

// clockGranularity is G of RFC 6298 §2: the resolution of the clock the
// samples come from (our timestamps tick in milliseconds).
const clockGranularity = time.Millisecond

// rttSample takes one round-trip measurement R (RFC 6298 §2.2, §2.3).
func (c *Conn) rttSample(r time.Duration) {
	if r < 0 {
		return
	}
	if !c.hasRTT {
		// "When the first RTT measurement R is made, the host MUST set
		// SRTT <- R, RTTVAR <- R/2".
		c.srtt, c.rttvar, c.hasRTT = r, r/2, true
		c.minRTT = r
	} else {
		// "RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|,
		// SRTT <- (1 - alpha) * SRTT + alpha * R'", alpha = 1/8, beta =
		// 1/4.
		d := c.srtt - r
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srtt = (7*c.srtt + r) / 8
		c.minRTT = min(c.minRTT, r)
	}
	// "RTO <- SRTT + max (G, K*RTTVAR)", K = 4, then rounded up to the
	// minimum (§2.4) and capped (§2.5).
	c.rto = min(max(c.srtt+max(clockGranularity, 4*c.rttvar), c.cfg.minRTO()), c.cfg.maxRTO())
}

// startTiming times the segment starting at seq, if no segment is being
// timed (RFC 6298 §3: one measurement per RTT suffices).
func (c *Conn) startTiming(now time.Time, seq seqnum.Value) {
	if !c.timing && !c.tsOK {
		c.timing, c.timedSeq, c.timedAt = true, seq, now
	}
}

// sampleFromAck takes an RTT sample from an ACK that acknowledged new data:
// from its echoed timestamp when timestamps are on (RFC 7323 §4.1), or
// from the timed segment, which Karn's rule voids when anything was
// retransmitted (RFC 6298 §3).
func (c *Conn) sampleFromAck(now time.Time, seg *Segment) time.Duration {
	if c.tsOK && seg.Options.HasTimestamps && seg.Options.TSEcr != 0 {
		r := time.Duration(c.tsNow(now)-seg.Options.TSEcr) * time.Millisecond
		if r >= 0 && r < time.Hour {
			c.rttSample(r)
			return r
		}
		return 0
	}
	if c.timing && c.timedSeq.LessThan(seg.Ack) {
		c.timing = false
		r := now.Sub(c.timedAt)
		c.rttSample(r)
		return r
	}
	return 0
}

// karn stops timing: a retransmission makes the sample ambiguous.
func (c *Conn) karn() { c.timing = false }
