package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/tcp/cc"
)

// Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation):
// for a congestion control that works from rates (cc.RateController, BBR),
// every ACK that delivers data yields a sample of how fast the path
// delivered it. Each segment in flight remembers, in its sentSeg, how many
// bytes the connection had delivered when it was sent, and when; the ACK
// that delivers it compares with how things stand now. The bookkeeping
// rides on RACK's per-segment record (rack.go), which a rate-based
// connection keeps even without SACK.

// rateAcc gathers one ACK's sample while the ACK is taken: the fields of
// the draft's rs of the most recently sent segment it delivers.
type rateAcc struct {
	has            bool  // some segment was delivered
	priorDelivered int64 // rs.prior_delivered
	sendElapsed    int64 // rs.send_elapsed, nanoseconds
	ackElapsed     int64 // rs.ack_elapsed, nanoseconds
	appLimited     bool  // rs.is_app_limited
	sent           int64 // that segment's send time
	rtt            int64 // its round trip, 0 when it was retransmitted
	acked          int   // bytes delivered by this ACK
}

// rateCtl returns the congestion control as a cc.RateController, or nil
// when it is not one or not made yet.
func (c *Conn) rateCtl() cc.RateController {
	if !c.cfg.rateBased() || !c.ccOn {
		return nil
	}
	rc, _ := c.ctl().(cc.RateController)
	return rc
}

// recording reports whether the connection keeps the per-segment record
// of what is in flight: for RACK-TLP, or for delivery-rate samples.
func (c *Conn) recording() bool {
	return c.rackOn() || c.ccOn && c.cfg.rateBased()
}

// startRate sets up a fresh record's rate state: samples are numbered on
// from what the algorithm last heard, so that its round trips, which it
// counts in delivered bytes, carry on across idle periods. The first
// flight after an idle period is application-limited until something of
// it is delivered.
func (c *Conn) startRate(l *lossState, now time.Time) {
	rc := c.rateCtl()
	if rc == nil {
		return
	}
	t := now.UnixNano()
	l.sampling = true
	l.delivered = rc.Delivered()
	l.deliveredAt, l.firstSentAt = t, t
	l.appLimited = l.delivered + 1
}

// stamp records in s, being sent, the connection's delivery state
// (the draft's "upon each packet transmission").
func (l *lossState) stamp(s *sentSeg) {
	if !l.sampling {
		return
	}
	s.delivered, s.deliveredAt, s.firstSentAt = l.delivered, l.deliveredAt, l.firstSentAt
	if l.appLimited != 0 {
		s.flags |= segAppLimited
	} else {
		s.flags &^= segAppLimited
	}
}

// deliver takes s, of size bytes, as delivered at t: C.delivered grows,
// and if s was sent after every other segment this ACK delivered, the
// sample describes it (the draft's UpdateRateSample).
func (l *lossState) deliver(rs *rateAcc, s *sentSeg, size int, t int64) {
	if !l.sampling {
		return
	}
	l.delivered += int64(size)
	l.deliveredAt = t
	rs.acked += size
	if rs.has && s.sent < rs.sent {
		return
	}
	rs.has = true
	rs.priorDelivered = s.delivered
	rs.appLimited = s.flags&segAppLimited != 0
	rs.sendElapsed = s.sent - s.firstSentAt
	rs.ackElapsed = t - s.deliveredAt
	rs.sent = s.sent
	rs.rtt = 0
	if s.flags&segEverRtx == 0 {
		rs.rtt = t - s.sent
	}
	l.firstSentAt = s.sent
}

// rateSample hands the ACK's sample to the algorithm, once the ACK's loss
// detection is done: lost is the bytes it newly deemed lost.
func (c *Conn) rateSample(now time.Time, rs *rateAcc, delivered int64, lost int) {
	rc := c.rateCtl()
	if rc == nil || rs.acked == 0 {
		return
	}
	s := cc.RateSample{Now: now, Delivered: delivered, Acked: rs.acked, Lost: max(lost, 0), InFlight: c.inFlight()}
	if rs.has {
		s.PriorDelivered = rs.priorDelivered
		s.DeliveredBytes = delivered - rs.priorDelivered
		s.AppLimited = rs.appLimited
		s.RTT = time.Duration(rs.rtt)
		// "rs.interval = max(rs.send_elapsed, rs.ack_elapsed)"; an
		// interval shorter than the least RTT is ACK compression, not a
		// rate the path can sustain.
		iv := time.Duration(max(rs.sendElapsed, rs.ackElapsed))
		if iv > 0 && (!c.hasRTT || iv >= c.minRTT) {
			s.Interval = iv
		}
	}
	rc.OnRateSample(s)
}

// checkAppLimited marks the connection application-limited when it has
// stopped sending for want of data, not of window: less than a segment
// queued, room in the congestion window, and nothing deemed lost waiting
// to be resent (the draft's CheckIfApplicationLimited, as Linux's
// tcp_rate_check_app_limited). Samples of what is in flight then say
// only that the path can do at least their rate.
func (c *Conn) checkAppLimited() {
	l := c.lossSt
	if l == nil || !c.cfg.rateBased() {
		return
	}
	unsent := 0
	if end := c.dataEnd(); c.sndNxt.LessThan(end) {
		unsent = int(c.sndNxt.Size(end))
	}
	flight := c.inFlight()
	if unsent < c.sndMSS && flight < c.cwnd() && l.lostB <= l.rtxB {
		l.appLimited = max(l.delivered+int64(flight), 1)
	}
}

// endAppLimited clears the mark once everything in flight when it was set
// has been delivered.
func (l *lossState) endAppLimited() {
	if l.appLimited != 0 && l.delivered > l.appLimited {
		l.appLimited = 0
	}
}
