package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp/cc"
)

// Sending: what may go out, and when. Flow control (the peer's window,
// RFC 9293 §3.8.6), congestion control (the window of package cc, RFC
// 5681), Nagle's algorithm and sender-side silly window syndrome avoidance
// (RFC 9293 §3.7.4, §3.8.6.2.1), and loss recovery by duplicate ACKs and
// SACK (RFC 5681 §3.2, RFC 6582, RFC 6675).

// dupThresh is DupThresh of RFC 5681 and RFC 6675: three duplicate ACKs.
const dupThresh = 3

// flush sends what the state and the windows allow: queued data, the FIN,
// and an ACK if one is owed now.
func (c *Conn) flush(now time.Time) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
		if c.inRecovery {
			c.sendRecovery(now)
		}
		c.sendData(now)
	}
	if c.ackNow {
		switch c.state {
		case Closed, Listen, SynSent:
		default:
			c.sendAck(now, c.ackReason)
		}
		c.ackNow = false
	}
}

// startCC turns congestion control on once the handshake has fixed the
// MSS. The algorithm's state is made when first needed (ctl): until the
// connection sends data or takes an ACK for some, its window is the
// initial window, and a connection that stays idle never holds one.
func (c *Conn) startCC() {
	c.ccOn = true
	c.cc = nil
}

// ccConfig is what the congestion controller is set up with.
func (c *Conn) ccConfig() cc.Config {
	return cc.Config{MSS: c.sndMSS, InitialWindow: c.cfg.initialWindow()}
}

// ctl returns the congestion controller, making it on first use. ccOn is
// set. An application-limited ACK that came before it existed is told to
// it first: of such ACKs, the algorithms keep only when the last one came
// and whether it emptied the pipe, so the one noted is enough.
func (c *Conn) ctl() cc.Algorithm {
	if c.cc == nil {
		c.cc, _ = cc.New(c.cfg.CongestionControl, c.ccConfig())
		if c.cc == nil {
			c.cc = cc.NewCubic(c.ccConfig())
		}
		if c.ccAckAt != 0 {
			ack := cc.Ack{Now: time.Unix(0, c.ccAckAt), Acked: 1, InFlight: 2, AppLimited: true}
			if c.ccAckEmptied {
				ack.InFlight = 1
			}
			c.cc.OnAck(ack)
			c.ccAckAt, c.ccAckEmptied = 0, false
		}
	}
	return c.cc
}

// cwnd is the congestion window without making the controller: a fresh
// one's is the initial window. ccOn is set.
func (c *Conn) cwnd() int {
	if c.cc == nil {
		return cc.InitialCWnd(c.ccConfig())
	}
	return c.cc.CWnd()
}

// sackedBelow counts the SACKed bytes before seq.
func (c *Conn) sackedBelow(seq seqnum.Value) int {
	total, _ := c.sacked.bytesAbove(c.sndUna)
	above, _ := c.sacked.bytesAbove(seq)
	return total - above
}

// inFlight is FlightSize of RFC 5681 less what the peer has SACKed: the
// bytes sent, not acknowledged, and still in the network as far as we
// know. After a timeout, only what has been resent since counts.
func (c *Conn) inFlight() int {
	if c.inRecovery {
		return c.pipe()
	}
	top := c.sndNxt
	if c.rtxNxt.LessThan(c.sndNxt) {
		top = c.rtxNxt
	}
	return int(c.sndUna.Size(top)) - c.sackedBelow(top)
}

// isLost is IsLost of RFC 6675 §4: DupThresh discontiguous SACKed ranges
// above seq, or more than (DupThresh-1)*SMSS bytes SACKed above it.
func (c *Conn) isLost(seq seqnum.Value) bool {
	bytes, ranges := c.sacked.bytesAbove(seq)
	return ranges >= dupThresh || bytes > (dupThresh-1)*c.sndMSS
}

// pipe is the estimate of RFC 6675 §4 (SetPipe) of the bytes in the
// network during recovery: unSACKed bytes not deemed lost, plus bytes
// retransmitted. Without SACK, each duplicate ACK stands for a segment
// that has left the network (the arithmetic of RFC 5681 §3.2's window
// inflation).
func (c *Conn) pipe() int {
	if c.rackOn() && c.lossSt != nil {
		return c.rackPipe() // RFC 8985: RACK's marks stand for IsLost
	}
	if !c.sackOK {
		out := int(c.sndUna.Size(c.sndNxt)) - int(c.dupAcks)*c.sndMSS
		if c.sndUna.LessThan(c.highRxt) {
			out += int(c.sndUna.Size(c.highRxt))
		}
		return max(out, 0)
	}
	pipe := 0
	p := c.sndUna
	hole := func(a, b seqnum.Value, lost bool) {
		if !lost {
			pipe += int(a.Size(b))
		}
		if a.LessThan(c.highRxt) {
			pipe += int(a.Size(seqnum.Min(b, c.highRxt)))
		}
	}
	for i := 0; i < c.sacked.len(); i++ {
		r := c.sacked.at(i)
		if p.LessThan(r.start) {
			hole(p, r.start, c.isLost(p))
		}
		p = r.end
	}
	if p.LessThan(c.sndNxt) {
		hole(p, c.sndNxt, false)
	}
	return pipe
}

// nextHole finds the first unSACKed range at or above from and below the
// highest SACKed byte: what RFC 6675's NextSeg rules 1 and 3 resend. With
// lostOnly it must also be deemed lost.
func (c *Conn) nextHole(from seqnum.Value, lostOnly bool) (seqnum.Value, seqnum.Value, bool) {
	p := c.sndUna
	for i := 0; i < c.sacked.len(); i++ {
		r := c.sacked.at(i)
		a := seqnum.Max(p, from)
		if a.LessThan(r.start) && (!lostOnly || c.isLost(a)) {
			return a, r.start, true
		}
		p = r.end
	}
	return 0, 0, false
}

// enterRecovery starts fast recovery: duplicate ACKs or SACK say the
// segment at SND.UNA is lost (RFC 5681 §3.2, RFC 6675 §5). The congestion
// window falls once, and the first lost segment is resent at once.
func (c *Conn) enterRecovery(now time.Time) {
	c.ctl().OnCongestion(now, c.inFlight())
	c.inRecovery = true
	c.recover = c.sndNxt
	c.highRxt = c.sndUna
	c.karn()
	if c.rackOn() {
		// RFC 8985 §6.2: RACK has marked what is lost; the first such
		// segment goes at once, as RFC 6675 §5 step 4 sends the first.
		if a, _, ok := c.rackFirstLost(); ok {
			c.retransmitAt(now, a, ReasonFastRetransmit)
		}
		return
	}
	c.retransmitAt(now, c.sndUna, ReasonFastRetransmit)
}

// sendRecovery sends during fast recovery while the pipe leaves room in the
// congestion window, by RFC 6675's NextSeg: lost holes first, then new data
// (sendData), then the other holes below the highest SACKed byte.
func (c *Conn) sendRecovery(now time.Time) {
	if !c.sackOK {
		return // NewReno resends one segment per partial ACK; new data follows in sendData
	}
	if c.rackOn() {
		// RFC 8985 §6.2 with RFC 6675's NextSeg rule 1: what RACK deems
		// lost, while the pipe leaves room.
		for c.cwnd()-c.pipe() >= c.sndMSS && !c.paceHold(now) {
			a, _, ok := c.rackFirstLost()
			if !ok {
				return
			}
			sent := c.retransSegs
			c.retransmitAt(now, a, ReasonFastRetransmit)
			if c.retransSegs == sent {
				return
			}
		}
		return
	}
	for c.cwnd()-c.pipe() >= c.sndMSS && !c.paceHold(now) {
		if a, _, ok := c.nextHole(c.highRxt, true); ok {
			sent := c.retransSegs
			c.retransmitAt(now, a, ReasonFastRetransmit)
			if c.retransSegs == sent {
				return // the peer's window shrank below the hole
			}
			continue
		}
		return // rules 2 and 3 are sendData's and the loop's next turn
	}
}

// retransmitAt resends one segment starting at seq, ignoring the windows
// that govern new data: a fast retransmission, or a partial ACK's
// resend (RFC 6582 §3.2 step 5).
func (c *Conn) retransmitAt(now time.Time, seq seqnum.Value, why Reason) {
	end := c.dataEnd()
	if !seq.LessThan(c.sndNxt) {
		return
	}
	n := 0
	if seq.LessThan(end) {
		// At most what was sent before: a retransmission carries no new
		// data past SND.NXT, which the window may not allow.
		n = min(int(seq.Size(end)), int(seq.Size(c.sndNxt)), c.sndMSS-c.sackOptionLen())
		// Nor beyond the peer's window, should it have shrunk since
		// (RFC 9293 §3.8.6).
		if wndEnd := c.sndWndEnd(); wndEnd.LessThanEq(seq) {
			n = 0
		} else {
			n = min(n, int(seq.Size(wndEnd)))
		}
		if in, _ := c.sacked.contains(seq); !in {
			// Stop at the next SACKed byte.
			for i := 0; i < c.sacked.len(); i++ {
				if r := c.sacked.at(i); seq.LessThan(r.start) {
					n = min(n, int(seq.Size(r.start)))
					break
				}
			}
		}
	}
	tx := Segment{Seq: seq, Flags: header.ACK}
	if n > 0 {
		tx.Payload = c.snd.peek(int(c.sndBuf.Size(seq)), n)
		n = len(tx.Payload)
	}
	if c.finQueued && seq.Add(seqnum.Size(n)) == end && end.LessThan(c.sndNxt) {
		tx.Flags |= header.FIN
	}
	if n == 0 && tx.Flags&header.FIN == 0 {
		return
	}
	c.send(now, &tx, why, true)
	c.rackSent(now, seq, tx.Len())
	if e := seq.Add(tx.Len()); c.highRxt.LessThan(e) {
		c.highRxt = e
	}
	if seq == c.sndUna && !c.timerArmed(TimerReorder) {
		// The first unacknowledged segment went again: the RTO counts
		// from its latest transmission, as Linux's tcp_rearm_rto does,
		// so that a fast retransmission that is lost too is found by
		// RACK (RFC 8985 §6.2) rather than by a timeout that resends
		// the whole flight. It takes the place of a loss probe, which
		// has no part in recovery (RFC 8985 §7.2).
		c.setTimer(now, TimerRetransmit, now.Add(c.rto))
	}
	c.armRetransmit(now)
}

// sendData segments the send queue from rtxNxt — which is SND.NXT unless a
// timeout sent us back to resend — within the peer's window, the
// congestion window and the MSS, skipping what the peer has SACKed, with
// the FIN on the segment that ends the queue once the user has closed.
func (c *Conn) sendData(now time.Time) {
	sentNew := false
	defer func() {
		if sentNew {
			c.armLossProbe(now) // RFC 8985 §7.2: after new data, (re)start the PTO
		}
		c.checkAppLimited()
	}()
	if c.ccOn && c.sndUna == c.sndNxt && !c.lastSend.IsZero() && now.Sub(c.lastSend) > c.rto {
		c.ctl().OnIdle(now) // RFC 5681 §4.1: restart after an idle period
	}
	for {
		if c.rtxNxt.LessThan(c.sndBuf) {
			// Only the SYN lies before the data, and the timer resends it.
			c.rtxNxt = c.sndBuf
		}
		p := c.rtxNxt
		if p.LessThan(c.sndNxt) {
			if in, end := c.sacked.contains(p); in {
				c.rtxNxt = seqnum.Min(end, c.sndNxt)
				continue
			}
		}
		rtx := p.LessThan(c.sndNxt)
		end := c.dataEnd()
		avail := 0
		if p.LessThan(end) {
			avail = int(p.Size(end))
		}
		mss := c.sndMSS - c.sackOptionLen()
		n := min(avail, mss)
		// RFC 9293 §3.8.6: never send beyond the peer's window.
		wndEnd := c.sndWndEnd()
		if wndEnd.LessThanEq(p) {
			n = 0
		} else {
			n = min(n, int(p.Size(wndEnd)))
		}
		// RFC 5681 §3.1: nor beyond the congestion window.
		if c.ccOn {
			room := c.cwnd() - c.inFlight()
			n = min(n, max(room, 0))
		}
		if rtx {
			// A resend after a timeout stops at the next SACKed range.
			for i := 0; i < c.sacked.len(); i++ {
				if r := c.sacked.at(i); p.LessThan(r.start) {
					n = min(n, int(p.Size(r.start)))
					break
				}
			}
		}
		fin := c.finQueued && p.Add(seqnum.Size(n)) == end
		if n == 0 && !fin || !rtx && !c.mayShip(n, avail, mss, fin) {
			c.armPersist(now, avail)
			return
		}
		if n > 0 && c.paceHold(now) {
			return // pacing.go: the next segment is not due yet
		}
		tx := Segment{Seq: p, Flags: header.ACK}
		if n > 0 {
			tx.Payload = c.snd.peek(int(c.sndBuf.Size(p)), n)
			if p.Add(seqnum.Size(len(tx.Payload))) == end {
				tx.Flags |= header.PSH
			} else {
				fin = false // the ring's wrap cut the segment short
			}
		}
		if fin {
			tx.Flags |= header.FIN
		}
		why := ReasonData
		switch {
		case rtx:
			why = ReasonRetransmit
			c.karn()
		case n == 0:
			why = ReasonFin
		default:
			c.startTiming(now, p)
		}
		if tx.Len() == 0 {
			return
		}
		c.send(now, &tx, why, rtx)
		c.rackSent(now, p, tx.Len())
		c.rtxNxt = p.Add(tx.Len())
		sentNew = sentNew || c.sndNxt.LessThan(c.rtxNxt)
		if c.sndNxt.LessThan(c.rtxNxt) {
			c.sndNxt = c.rtxNxt
		}
		c.lastSend = now
		c.stopTimer(now, TimerPersist)
		c.armRetransmit(now)
		c.armUserTimeout(now)
	}
}

// mayShip decides whether a new segment of n bytes, with avail bytes queued
// from its start, goes out now: a full segment always; a short one only if
// it empties the queue (or carries the FIN) and Nagle's algorithm allows —
// nothing unacknowledged, or NoDelay (RFC 9293 §3.7.4) — or if it is at
// least half the largest window the peer has offered (RFC 9293
// §3.8.6.2.1's sender-side silly window syndrome avoidance).
func (c *Conn) mayShip(n, avail, mss int, fin bool) bool {
	if n >= mss || fin {
		return true
	}
	idle := c.sndUna == c.sndNxt
	nagleOK := c.noDelay || idle
	if n == avail && nagleOK {
		return true
	}
	return nagleOK && c.maxSndWnd > 0 && n >= int(c.maxSndWnd)/2
}

// armPersist starts the persist timer when data waits, nothing is in
// flight to bring an ACK back, and the peer's window is what holds it up
// (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17).
func (c *Conn) armPersist(now time.Time, avail int) {
	if avail == 0 || c.sndUna != c.sndNxt || c.timerArmed(TimerPersist) || !c.timers[TimerRetransmit].IsZero() {
		return
	}
	wnd := 0
	if end := c.sndWndEnd(); c.sndNxt.LessThan(end) {
		wnd = int(c.sndNxt.Size(end))
	}
	if wnd >= min(avail, c.sndMSS) {
		return // not the window: Nagle or the congestion window holds it
	}
	c.setTimer(now, TimerPersist, now.Add(c.persistBackoff()))
}

func (c *Conn) persistBackoff() time.Duration {
	d := c.rto
	for range c.probes {
		d = min(2*d, c.cfg.maxRTO())
	}
	return d
}

// sndWndEnd is the right edge of the peer's window: the window SND.WND it
// offered counts from the acknowledgment SND.WL2 that came with it, not
// from SND.UNA, which may have moved on since without a window of its own.
func (c *Conn) sndWndEnd() seqnum.Value { return c.sndWL2.Add(seqnum.Size(c.sndWnd)) }
