package tcp

import (
	"sync"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// RACK-TLP (RFC 8985): time-based loss detection. RACK deems a segment
// lost once a segment sent sufficiently later has been delivered (§6);
// the Tail Loss Probe sends one segment when the ACKs stop, so that a
// loss at the tail of a flight is found by RACK in about two round trips
// instead of by the retransmission timer (§7). Both need SACK (§3.3); a
// connection without it keeps RFC 5681's duplicate-ACK rules.
//
// The per-segment record RACK needs (§6.1: when each segment was last
// sent, and whether it is lost or retransmitted) lives in a lossState
// that a connection holds only while it has data in flight, taken from a
// pool and given back once everything is acknowledged.

// The flags of a sentSeg.
const (
	segSacked     uint8 = 1 << iota // delivered: the peer SACKed all of it
	segLost                         // RACK (or the timeout) deemed it lost
	segRetrans                      // retransmitted since it was deemed lost
	segEverRtx                      // retransmitted at least once
	segAppLimited                   // P.is_app_limited (rate.go)
)

// sentSeg is one segment in flight: it ends at end and starts where the
// one before it ends (the first at lossState.start).
type sentSeg struct {
	end   seqnum.Value
	flags uint8
	sent  int64 // Segment.xmit_ts (RFC 8985 §6.1), Unix nanoseconds

	// For delivery-rate samples (rate.go), as the connection stood when
	// the segment was last sent: P.delivered, P.delivered_time and
	// P.first_send_time.
	delivered   int64
	deliveredAt int64
	firstSentAt int64
}

// lossState is RACK-TLP's state (RFC 8985 §6.1, §7).
type lossState struct {
	segs  []sentSeg // a ring, its length a power of two
	head  int
	n     int
	start seqnum.Value // the first segment's start

	// Bytes of segments not SACKed that are deemed lost, and that were
	// retransmitted since: the pipe is the outstanding bytes less SACKed
	// and lost ones plus retransmitted ones (as Linux's
	// tcp_packets_in_flight).
	lostB, rtxB int

	// RACK.xmit_ts, RACK.end_seq and RACK.rtt (§6.1): of the most
	// recently sent segment that has been delivered.
	xmit   int64
	endSeq seqnum.Value
	rtt    time.Duration

	// No segment that starts before lostFrom is deemed lost and not yet
	// retransmitted: where rackFirstLost starts looking.
	lostFrom seqnum.Value

	// RACK.dsack_round (RFC 8985 §6.2 step 4), valid while dsackRoundOn.
	dsackRoundOn bool
	dsackRound   seqnum.Value

	// TLP.end_seq, and whether the probe was a retransmission (§7.1).
	tlpEnd     seqnum.Value
	tlpOut     bool
	tlpRetrans bool

	// Delivery-rate estimation (rate.go), for a cc.RateController
	// (sampling): C.delivered, C.delivered_time, C.first_send_time and
	// C.app_limited. Other algorithms skip the bookkeeping.
	sampling    bool
	delivered   int64
	deliveredAt int64
	firstSentAt int64
	appLimited  int64

	// Pacing (pacing.go): when the next segment is due, Unix nanoseconds,
	// and whether the connection waits for it.
	paceNext int64
	paceWait bool
}

var lossPool = sync.Pool{New: func() any { return &lossState{segs: make([]sentSeg, 64)} }}

// minPTO is the least probe timeout, as older Linux kernels'
// tcp_schedule_loss_probe floor: on a path whose round trip is shorter than
// the time a few segments take to serialize, two handshake round trips
// would probe before the first ACK could come.
const minPTO = 10 * time.Millisecond

// maxAckDelay is WCDelAckT of RFC 8985 §7.2: the longest a peer may
// delay an ACK, which a probe for a single segment must wait out.
const maxAckDelay = 200 * time.Millisecond

// rackOn reports whether RACK-TLP runs on this connection.
func (c *Conn) rackOn() bool { return c.sackOK && c.ccOn && !c.cfg.NoRACK }

func (l *lossState) at(i int) *sentSeg { return &l.segs[(l.head+i)&(len(l.segs)-1)] }

func (l *lossState) startOf(i int) seqnum.Value {
	if i == 0 {
		return l.start
	}
	return l.at(i - 1).end
}

// find returns the index of the segment holding seq: the first whose end
// lies beyond it (l.n when none does).
func (l *lossState) find(seq seqnum.Value) int {
	lo, hi := 0, l.n
	for lo < hi {
		m := (lo + hi) / 2
		if l.at(m).end.LessThanEq(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (l *lossState) push(s sentSeg) {
	if l.n == len(l.segs) {
		ns := make([]sentSeg, 2*len(l.segs))
		for i := range l.n {
			ns[i] = *l.at(i)
		}
		l.segs, l.head = ns, 0
	}
	l.n++
	*l.at(l.n - 1) = s
}

// forget takes a delivered or acknowledged segment's bytes out of the
// lost and retransmitted counts.
func (l *lossState) forget(s *sentSeg, size int) {
	if s.flags&segSacked != 0 {
		return
	}
	if s.flags&segLost != 0 {
		l.lostB -= size
	}
	if s.flags&segRetrans != 0 {
		l.rtxB -= size
	}
}

// loss returns the connection's lossState, taking one from the pool when
// it holds none; what is already in flight becomes one segment.
func (c *Conn) loss(now time.Time) *lossState {
	if c.lossSt == nil {
		l := lossPool.Get().(*lossState)
		l.start, l.lostFrom = c.sndUna, c.sndUna
		c.startRate(l, now)
		if c.sndUna.LessThan(c.sndNxt) {
			l.push(sentSeg{end: c.sndNxt, sent: now.UnixNano(), deliveredAt: l.deliveredAt, firstSentAt: l.firstSentAt})
		}
		c.lossSt = l
	}
	return c.lossSt
}

// releaseLoss gives the lossState back once nothing is in flight.
func (c *Conn) releaseLoss() {
	if l := c.lossSt; l != nil {
		segs := l.segs
		*l = lossState{segs: segs}
		lossPool.Put(l)
		c.lossSt = nil
	}
}

// rackSent records the transmission of [seq, seq+n) (RFC 8985 §6.1):
// new data becomes new segments; a retransmission renews the send time of
// the segments it covers and marks them retransmitted.
//
// The same record serves delivery-rate estimation and pacing (rate.go,
// pacing.go) when the congestion control needs them.
func (c *Conn) rackSent(now time.Time, seq seqnum.Value, n seqnum.Size) {
	if !c.recording() || n == 0 {
		return
	}
	idle := c.sndUna == c.sndNxt
	l := c.loss(now)
	t := now.UnixNano()
	c.paced(l, t, int(n))
	if idle {
		// Nothing in flight: the rate's intervals start afresh (the
		// draft's "if there are no packets in flight yet").
		l.deliveredAt, l.firstSentAt = t, t
	}
	end := seq.Add(n)
	top := l.start
	if l.n > 0 {
		top = l.at(l.n - 1).end
	}
	for i := l.find(seq); i < l.n && l.startOf(i).LessThan(end); i++ {
		s := l.at(i)
		s.sent = t
		l.stamp(s)
		if s.flags&(segRetrans|segSacked) == 0 {
			l.rtxB += int(l.startOf(i).Size(s.end))
		}
		s.flags |= segRetrans | segEverRtx
	}
	if top.LessThan(end) {
		if seq.LessThan(top) {
			seq = top
		}
		if seq != top {
			// A gap in the record cannot happen while new data goes out in
			// order; count it as sent now all the same.
			l.push(sentSeg{end: seq, sent: t})
			l.stamp(l.at(l.n - 1))
		}
		l.push(sentSeg{end: end, sent: t})
		l.stamp(l.at(l.n - 1))
	}
}

// rackAcked takes an ACK into the record, before the scoreboard and
// SND.UNA take it: the segments it acknowledges cumulatively go, those it
// newly SACKs are marked, and each that was delivered updates RACK.xmit_ts,
// RACK.end_seq and RACK.rtt (RFC 8985 §6.2 step 2).
//
// It gathers the ACK's delivery-rate sample into rs (rate.go).
func (c *Conn) rackAcked(now time.Time, seg *Segment, ack seqnum.Value, rs *rateAcc) {
	l := c.lossSt
	if l == nil {
		return
	}
	t := now.UnixNano()
	// SACK blocks first, against the scoreboard as it was: only what is
	// new in them (RFC 6675 §4's Update) is delivered by this ACK.
	for i := 0; i < seg.Options.NumSACK && i < header.MaxSACKBlocks; i++ {
		b := seg.Options.SACKBlocks[i]
		left, right := seqnum.Max(b.Left, ack), b.Right
		if !left.LessThan(right) || c.sndNxt.LessThan(right) {
			continue
		}
		for j := l.find(left); j < l.n; j++ {
			s := l.at(j)
			a := l.startOf(j)
			if right.LessThan(s.end) {
				break // partly SACKed: left to later blocks or the ACK
			}
			if s.flags&segSacked != 0 {
				if in, e := c.sacked.contains(a); in {
					j = l.find(e) - 1 // skip what the scoreboard held already
				}
				continue
			}
			if left.LessThanEq(a) {
				c.rackDelivered(l, s, t)
				l.deliver(rs, s, int(a.Size(s.end)), t)
				l.forget(s, int(a.Size(s.end)))
				s.flags |= segSacked
			}
		}
	}
	// The cumulative ACK.
	for l.n > 0 && l.at(0).end.LessThanEq(ack) {
		s := l.at(0)
		if s.flags&segSacked == 0 {
			c.rackDelivered(l, s, t)
			l.deliver(rs, s, int(l.start.Size(s.end)), t)
		}
		l.forget(s, int(l.start.Size(s.end)))
		l.start = s.end
		l.head = (l.head + 1) & (len(l.segs) - 1)
		l.n--
	}
	if l.n > 0 && l.start.LessThan(ack) {
		// A segment acknowledged in part: its rest stays, counted smaller.
		s := l.at(0)
		if s.flags&segSacked == 0 {
			part := int(l.start.Size(ack))
			l.delivered += int64(part)
			rs.acked += part
			if s.flags&segLost != 0 {
				l.lostB -= part
			}
			if s.flags&segRetrans != 0 {
				l.rtxB -= part
			}
		}
		l.start = ack
	}
	if l.n == 0 {
		l.start = ack
	}
}

// rackDelivered is RFC 8985 §6.2 step 2 for one delivered segment.
func (c *Conn) rackDelivered(l *lossState, s *sentSeg, now int64) {
	rtt := time.Duration(now - s.sent)
	if s.flags&segEverRtx != 0 && c.hasRTT && rtt < c.minRTT {
		// "If Segment.retransmitted is TRUE and ... Now() - Segment.xmit_ts
		// < RACK.min_RTT": the ACK is for the original, not this
		// retransmission; it says nothing of the later send time.
		return
	}
	if s.sent > l.xmit || s.sent == l.xmit && l.endSeq.LessThan(s.end) {
		l.rtt, l.xmit, l.endSeq = rtt, s.sent, s.end
	}
}

// reoWnd is RACK.reo_wnd (RFC 8985 §6.2 step 4): a quarter of the least
// round trip seen times RACK.reo_wnd_mult, at most SRTT.
func (c *Conn) reoWnd() time.Duration {
	if !c.hasRTT {
		return 0
	}
	return min(c.minRTT/4*time.Duration(1+int(c.reoMult)), c.srtt)
}

// rackReorderWindow adapts the reordering window to D-SACKs (RFC 8985
// §6.2 step 4): a D-SACK says a retransmission was spurious, the
// original having been only reordered, so the window widens by a quarter
// RTT, at most once a round trip; it stays widened for sixteen recoveries.
func (c *Conn) rackReorderWindow(seg *Segment) {
	l := c.lossSt
	if l == nil {
		return
	}
	if l.dsackRoundOn && l.dsackRound.LessThanEq(c.sndUna) {
		l.dsackRoundOn = false
	}
	if !l.dsackRoundOn && hasDSACK(seg) {
		l.dsackRound, l.dsackRoundOn = c.sndNxt, true
		if c.reoMult < 255 {
			c.reoMult++
		}
		c.reoPersist = 16
	}
}

// rackRecoveryEnd counts a recovery's end toward the reordering window's
// return to its base (RFC 8985 §6.2 step 4: "Else if exiting Fast or RTO
// recovery").
func (c *Conn) rackRecoveryEnd() {
	if c.reoPersist == 0 {
		return
	}
	c.reoPersist--
	if c.reoPersist == 0 {
		c.reoMult = 0
	}
}

// rackDetect is RACK_detect_loss of RFC 8985 §6.2 step 5: a segment not
// delivered that was sent before the most recently delivered one, by more
// than RACK.rtt + RACK.reo_wnd ago, is lost. It returns how long until the
// next one would be (zero when none waits), for the reordering timer
// (§6.3), and whether it found any lost.
func (c *Conn) rackDetect(now time.Time) (time.Duration, bool) {
	l := c.lossSt
	if l == nil || l.xmit == 0 {
		return 0, false
	}
	t := now.UnixNano()
	wait := l.rtt + c.reoWnd()
	var timeout time.Duration
	found := false
	for i := 0; i < l.n; i++ {
		s := l.at(i)
		a := l.startOf(i)
		if s.flags&segSacked != 0 {
			if in, e := c.sacked.contains(a); in {
				i = l.find(e) - 1 // skip a SACKed run at once
			}
			continue
		}
		if s.flags&segLost != 0 && s.flags&segRetrans == 0 {
			continue // deemed lost, not yet resent: xmit_ts is "infinite"
		}
		// A retransmission sent in the same instant as the delivered
		// segment went out after it: only an original ties on end_seq.
		if !(l.xmit > s.sent || l.xmit == s.sent && s.end.LessThan(l.endSeq) && s.flags&segEverRtx == 0) {
			// RACK_sent_after fails: sent after the last delivered one.
			// Segments never retransmitted went out in order, so every
			// one after this, and every retransmission of one, did too.
			if s.flags&segEverRtx == 0 {
				break
			}
			continue
		}
		remaining := time.Duration(s.sent-t) + wait
		if remaining <= 0 {
			size := int(a.Size(s.end))
			if s.flags&segRetrans != 0 {
				l.rtxB -= size // the retransmission is lost too
			} else {
				l.lostB += size
			}
			s.flags = s.flags&^segRetrans | segLost
			if a.LessThan(l.lostFrom) {
				l.lostFrom = a
			}
			found = true
			continue
		}
		timeout = max(timeout, remaining)
	}
	return timeout, found
}

// rackFirstLost returns the start of the first segment deemed lost and not
// yet retransmitted, for NextSeg (RFC 8985 §6.2: lost segments are
// retransmitted as RFC 6675's recovery allows).
func (c *Conn) rackFirstLost() (seqnum.Value, seqnum.Value, bool) {
	l := c.lossSt
	if l == nil || l.lostB <= l.rtxB && l.lostB <= 0 {
		return 0, 0, false
	}
	from := l.start
	if l.start.LessThan(l.lostFrom) {
		from = l.lostFrom
	}
	for i := l.find(from); i < l.n; i++ {
		s := l.at(i)
		if s.flags&segSacked != 0 {
			if in, e := c.sacked.contains(l.startOf(i)); in {
				i = l.find(e) - 1
			}
			continue
		}
		if s.flags&(segLost|segRetrans) == segLost {
			l.lostFrom = l.startOf(i)
			return l.lostFrom, s.end, true
		}
	}
	if l.n > 0 {
		l.lostFrom = l.at(l.n - 1).end
	}
	return 0, 0, false
}

// rackPipe is the bytes in flight as RACK counts them: outstanding, less
// SACKed and lost, plus retransmitted.
func (c *Conn) rackPipe() int {
	l := c.lossSt
	out := int(c.sndUna.Size(c.sndNxt)) - c.sackedBelow(c.sndNxt)
	if l != nil {
		out += l.rtxB - l.lostB
	}
	return max(out, 0)
}

// rackOnAck runs RACK after an ACK has been taken (RFC 8985 §6.2): loss
// detection, the reordering timer, fast recovery for what it finds lost,
// and the TLP bookkeeping of §7.4.
func (c *Conn) rackOnAck(now time.Time) {
	l := c.lossSt
	if l == nil {
		return
	}
	if l.tlpOut && l.tlpEnd.LessThanEq(c.sndUna) {
		// §7.4: the probe is acknowledged. A retransmitted probe whose ACK
		// carries no DSACK repaired a real loss: congestion control must
		// hear of it (§7.4.2), as Linux's tcp_process_tlp_ack.
		if l.tlpRetrans && !c.inRecovery {
			c.ctl().OnCongestion(now, c.inFlight())
			c.ctl().OnRecoveryEnd(now)
		}
		l.tlpOut = false
	}
	timeout, found := c.rackDetect(now)
	if found && !c.inRecovery && c.recover.LessThanEq(c.sndUna) {
		c.enterRecovery(now)
	}
	if timeout > 0 {
		c.setTimer(now, TimerReorder, now.Add(timeout))
	} else if c.timerArmed(TimerReorder) {
		c.stopTimer(now, TimerReorder)
	}
	if c.sndUna.LessThan(c.sndNxt) {
		c.armRetransmit(now) // the RTO again, when the reordering timer gave way
	} else {
		c.releaseLoss()
	}
}

// reorderTimeout is RACK's reordering timer (RFC 8985 §6.3): time has
// passed, so detect losses again and recover from what is found.
func (c *Conn) reorderTimeout(now time.Time) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	timeout, found := c.rackDetect(now)
	if found && !c.inRecovery && c.recover.LessThanEq(c.sndUna) {
		c.enterRecovery(now)
	}
	if timeout > 0 {
		c.setTimer(now, TimerReorder, now.Add(timeout))
	}
	c.flush(now)
	if c.sndUna.LessThan(c.sndNxt) {
		c.armRetransmit(now)
	}
}

// armLossProbe schedules the tail loss probe (RFC 8985 §7.2) in place of
// the retransmission timer, after new data went out or an ACK
// acknowledged some: not during recovery nor after a timeout, not while
// SACKed segments wait for RACK, and not while a probe is outstanding.
func (c *Conn) armLossProbe(now time.Time) {
	if !c.rackOn() || c.inRecovery || c.retries > 0 || !c.sndUna.LessThan(c.sndNxt) ||
		!c.sacked.empty() || c.timerArmed(TimerReorder) || c.rtxNxt.LessThan(c.sndNxt) {
		return
	}
	if l := c.lossSt; l != nil && l.tlpOut {
		return
	}
	// "If SRTT is available: PTO = 2*SRTT; if FlightSize is one segment,
	// PTO += WCDelAckT ... else PTO = 1 sec"; and "PTO = min(PTO, RTO)".
	pto := time.Second
	if c.hasRTT {
		pto = 2 * c.srtt
		if int(c.sndUna.Size(c.sndNxt)) <= c.sndMSS {
			pto += maxAckDelay
		}
	}
	pto = min(max(pto, minPTO), c.rto)
	c.setTimer(now, TimerLossProbe, now.Add(pto))
}

// lossProbeTimeout sends the probe (RFC 8985 §7.3): a segment of new data
// if the windows allow, else the last segment sent again, then arms the
// retransmission timer.
func (c *Conn) lossProbeTimeout(now time.Time) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	if !c.sndUna.LessThan(c.sndNxt) {
		return
	}
	l := c.loss(now)
	before := c.sndNxt
	if c.sndNxt.LessThan(c.dataEnd()) && c.sndNxt.LessThan(c.sndWndEnd()) {
		c.sendOne(now)
	}
	if c.sndNxt == before {
		// No new data could go: resend the last segment.
		start := c.sndUna
		if l.n > 0 {
			start = seqnum.Max(l.startOf(l.n-1), c.sndUna)
		}
		if int(start.Size(c.sndNxt)) > c.sndMSS {
			start = c.sndNxt.Sub(seqnum.Size(c.sndMSS))
		}
		c.retransmitAt(now, start, ReasonLossProbe)
		l.tlpRetrans = true
	} else {
		l.tlpRetrans = false
	}
	l.tlpEnd, l.tlpOut = c.sndNxt, true
	c.setTimer(now, TimerRetransmit, now.Add(c.rto))
}

// sendOne sends one segment of new data for a loss probe, ignoring the
// congestion window (RFC 8985 §7.3) but not the peer's.
func (c *Conn) sendOne(now time.Time) {
	p := c.sndNxt
	n := min(int(p.Size(c.dataEnd())), c.sndMSS-c.sackOptionLen(), int(p.Size(c.sndWndEnd())))
	tx := Segment{Seq: p, Flags: header.ACK}
	tx.Payload = c.snd.peek(int(c.sndBuf.Size(p)), n)
	if len(tx.Payload) == 0 {
		return
	}
	if p.Add(seqnum.Size(len(tx.Payload))) == c.dataEnd() {
		tx.Flags |= header.PSH
	}
	c.send(now, &tx, ReasonLossProbe, false)
	c.sndNxt = p.Add(tx.Len())
	c.rtxNxt = c.sndNxt
	c.lastSend = now
	c.rackSent(now, p, tx.Len())
}

// rackTimeout resets the record when the retransmission timer fires:
// everything not SACKed is resent from SND.UNA (RFC 8985 §6.3 treats it
// all as lost; the go-back-N resend renews each time). SACKed segments
// stay so unless the peer reneged.
func (c *Conn) rackTimeout(reneged bool) {
	l := c.lossSt
	if l == nil {
		return
	}
	keep := segEverRtx | segSacked
	if reneged {
		keep = segEverRtx
	}
	for i := 0; i < l.n; i++ {
		l.at(i).flags &= keep
	}
	l.lostB, l.rtxB = 0, 0
	l.tlpOut = false
}
