package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
)

// Deadline returns when the connection next needs HandleTimeout: the
// earliest of its running timers, or the zero time when none runs.
func (c *Conn) Deadline() time.Time {
	d := c.paceDeadline()
	for _, t := range c.timers {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// HandleTimeout fires every timer whose deadline is at or before now
// (RFC 9293 §3.10.8), and sends what pacing held back until now.
func (c *Conn) HandleTimeout(now time.Time) {
	defer c.paceTimeout(now)
	// TIME-WAIT and the user timeout end the connection; check them first
	// so a retransmission is not sent by a connection that is ending.
	for _, t := range [...]Timer{TimerTimeWait, TimerUser, TimerRetransmit, TimerPersist, TimerKeepAlive, TimerDelayedAck} {
		d := c.timers[t]
		if d.IsZero() || d.After(now) {
			continue
		}
		c.timers[t] = time.Time{}
		if t == TimerRetransmit {
			t = c.rtxKind // the shared slot: which of its timers this is
			c.rtxKind = TimerRetransmit
		}
		c.curKind, c.curTimer = CauseTimer, t
		if c.observing(EventTimerFired) {
			c.emit(Event{Time: now, Type: EventTimerFired, Timer: t})
		}
		switch t {
		case TimerTimeWait:
			c.timeWaitTimeout(now)
		case TimerUser:
			c.userTimeout(now)
		case TimerRetransmit:
			c.retransmitTimeout(now)
		case TimerLossProbe:
			c.lossProbeTimeout(now)
		case TimerReorder:
			c.reorderTimeout(now)
		case TimerPersist:
			c.persistTimeout(now)
		case TimerKeepAlive:
			c.keepAliveTimeout(now)
		case TimerDelayedAck:
			if c.state != Closed && c.state != Listen && c.state != SynSent {
				c.sendAck(now, ReasonDelayedAck)
			}
		}
	}
}

// timeWaitTimeout: "If the time-wait timeout expires on a connection,
// delete the TCB, enter the CLOSED state, and return." (RFC 9293 §3.10.8)
func (c *Conn) timeWaitTimeout(now time.Time) {
	if c.state == TimeWait {
		c.enterClosed(now, nil)
	}
}

// userTimeout: "For any state if the user timeout expires, flush all
// queues, signal the user "error: connection aborted due to user timeout"
// ..., delete the TCB, enter the CLOSED state, and return." (RFC 9293
// §3.10.8)
func (c *Conn) userTimeout(now time.Time) {
	if c.state != Closed {
		c.enterClosed(now, ErrUserTimeout)
	}
}

// retransmitTimeout resends the oldest unacknowledged segment — the SYN,
// the SYN,ACK, or data and FIN from SND.UNA on — after doubling the RTO
// (RFC 9293 §3.8.1, RFC 6298 §5.5–5.7). Congestion control restarts from
// one segment (RFC 5681 §3.1) and recovery ends. What the peer has SACKed
// is kept and not resent (RFC 6675 §5.1 allows it; Linux does so): only
// if the first unacknowledged byte itself shows as SACKed has the peer
// reneged, and the scoreboard is set aside (RFC 2018 §8). After too many
// tries the connection gives up with ErrTimeout.
func (c *Conn) retransmitTimeout(now time.Time) {
	limit := c.cfg.dataRetries()
	switch c.state {
	case SynSent:
		limit = c.cfg.synRetries()
	case SynReceived:
		limit = c.cfg.synAckRetries()
	case Closed, Listen, TimeWait, FinWait2:
		return
	}
	if int(c.retries) >= limit {
		c.enterClosed(now, ErrTimeout)
		return
	}
	c.retries++
	c.rto = min(2*c.rto, c.cfg.maxRTO())
	c.karn()
	switch {
	case c.state == SynSent:
		c.sendSyn(now, false, true)
	case c.sndUna == c.iss:
		// Our SYN,ACK is still unacknowledged (SYN-RECEIVED, or a CLOSE
		// from SYN-RECEIVED that moved on to FIN-WAIT-1).
		c.sendSyn(now, true, true)
	default:
		if c.ccOn {
			c.ctl().OnTimeout(now, c.inFlight())
		}
		c.inRecovery = false
		c.dupAcks = 0
		c.recover = c.sndNxt // no fast retransmit for what the timeout resends (RFC 6582 §4)
		reneged, _ := c.sacked.contains(c.sndUna)
		if reneged {
			c.sacked.reset()
		}
		c.rackTimeout(reneged)
		// Go back to the first unacknowledged byte and resend from there.
		c.rtxNxt = c.sndUna
		c.highRxt = c.sndUna
		c.sendData(now)
		if c.rtxNxt == c.sndUna {
			// Nothing could go (a shut window): probe it instead.
			c.sendProbe(now, ReasonProbe)
			c.armRetransmit(now)
		}
	}
}

// persistTimeout probes a zero window: <SEQ=SND.UNA-1><ACK=RCV.NXT>, a
// segment the peer must answer with an ACK that carries its window, as
// Linux probes. RFC 9293 §3.8.6.1 requires that a sender facing a zero
// window keep probing; the interval doubles with each probe (RFC 1122
// §4.2.2.17). A peer that answers keeps the connection alive however long
// its window stays shut.
func (c *Conn) persistTimeout(now time.Time) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	if int(c.probes) >= c.cfg.dataRetries() {
		c.enterClosed(now, ErrTimeout)
		return
	}
	c.probes++
	c.sendProbe(now, ReasonProbe)
	c.sendData(now) // the window may have opened meanwhile
	if c.sndUna == c.sndNxt && !c.timerArmed(TimerPersist) {
		c.setTimer(now, TimerPersist, now.Add(c.persistBackoff()))
	}
}

// keepAliveTimeout probes an idle connection (RFC 1122 §4.2.3.6): after
// KeepAliveIdle without a segment from the peer, a probe with SEG.SEQ =
// SND.NXT-1 that draws an ACK; after KeepAliveCount unanswered probes the
// connection is dead.
func (c *Conn) keepAliveTimeout(now time.Time) {
	switch c.state {
	case Established, CloseWait:
	default:
		return
	}
	if idleUntil := c.lastRecv.Add(c.kaIdle); c.kaProbes == 0 && idleUntil.After(now) {
		c.setTimer(now, TimerKeepAlive, idleUntil) // traffic since: wait on
		return
	}
	if c.kaProbes >= c.kaCount {
		c.enterClosed(now, ErrTimeout)
		return
	}
	c.kaProbes++
	c.sendProbe(now, ReasonKeepAlive)
	c.setTimer(now, TimerKeepAlive, now.Add(c.kaInterval))
}

// sendProbe sends <SEQ=SND.UNA-1><ACK=RCV.NXT><CTL=ACK>: old enough to be
// outside the peer's window, so it must answer with an ACK.
func (c *Conn) sendProbe(now time.Time, why Reason) {
	tx := Segment{Seq: c.sndUna.Sub(1), Flags: header.ACK}
	c.send(now, &tx, why, false)
}

// armRetransmit starts the retransmission timer if it is not running
// (RFC 6298 §5.1), nor the loss probe or reordering timer that stands in
// its place (RFC 8985 §7.2, §6.3).
func (c *Conn) armRetransmit(now time.Time) {
	if c.timers[TimerRetransmit].IsZero() {
		c.setTimer(now, TimerRetransmit, now.Add(c.rto))
	}
}

// armUserTimeout starts the user timeout, if one is configured, when sent
// data starts waiting for its acknowledgment (RFC 5482 §2).
func (c *Conn) armUserTimeout(now time.Time) {
	if c.cfg.UserTimeout > 0 && !c.timerArmed(TimerUser) {
		c.setTimer(now, TimerUser, now.Add(c.cfg.UserTimeout))
	}
}

// onAckProgress runs when an ACK acknowledges new data: the RTO backoff
// ends, and the timers restart for what remains outstanding or stop
// (RFC 6298 §5.2, §5.3; RFC 5482).
func (c *Conn) onAckProgress(now time.Time) {
	c.retries = 0
	if !c.hasRTT {
		c.rto = c.cfg.initialRTO()
	}
	c.stopTimer(now, c.rtxKind) // the RTO, or the PTO or reordering timer in its place
	c.stopTimer(now, TimerUser)
	if c.sndUna.LessThan(c.sndNxt) {
		c.armRetransmit(now)
		c.armUserTimeout(now)
	}
}

// slot is where timer t keeps its deadline, and whether t is the timer
// that slot holds now: the retransmission, loss-probe and reordering
// timers share one.
func (c *Conn) slot(t Timer) (Timer, bool) {
	switch t {
	case TimerRetransmit, TimerLossProbe, TimerReorder:
		return TimerRetransmit, c.rtxKind == t
	}
	return t, true
}

func (c *Conn) timerArmed(t Timer) bool {
	s, mine := c.slot(t)
	return mine && !c.timers[s].IsZero()
}

// timerAt is timer t's deadline, zero when it is stopped.
func (c *Conn) timerAt(t Timer) time.Time {
	if s, mine := c.slot(t); mine {
		return c.timers[s]
	}
	return time.Time{}
}

func (c *Conn) setTimer(now time.Time, t Timer, at time.Time) {
	s, mine := c.slot(t)
	if !mine {
		c.stopTimer(now, c.rtxKind) // the timer sharing the slot gives way
		c.rtxKind = t
	}
	c.timers[s] = at
	if c.observing(EventTimerSet) {
		c.emit(Event{Time: now, Type: EventTimerSet, Timer: t, Deadline: at})
	}
}

func (c *Conn) stopTimer(now time.Time, t Timer) {
	s, mine := c.slot(t)
	if !mine || c.timers[s].IsZero() {
		return
	}
	c.timers[s] = time.Time{}
	if c.observing(EventTimerStopped) {
		c.emit(Event{Time: now, Type: EventTimerStopped, Timer: t})
	}
}

func (c *Conn) stopAllTimers(now time.Time) {
	for t := range numTimers {
		c.stopTimer(now, t)
	}
}

// startTimeWait enters TIME-WAIT: "start the time-wait timer, turn off the
// other timers" (RFC 9293 §3.10.7.4, eighth step). It also restarts the
// wait when the peer's FIN arrives again.
func (c *Conn) startTimeWait(now time.Time) {
	c.stopTimer(now, c.rtxKind)
	c.stopTimer(now, TimerUser)
	c.setTimer(now, TimerTimeWait, now.Add(2*c.cfg.msl()))
	c.setState(now, TimeWait)
}
