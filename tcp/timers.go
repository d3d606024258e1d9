package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
)

// Deadline returns when the connection next needs HandleTimeout: the
// earliest of its running timers, or the zero time when none runs.
func (c *Conn) Deadline() time.Time {
	var d time.Time
	for _, t := range c.timers {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// HandleTimeout fires every timer whose deadline is at or before now
// (RFC 9293 §3.10.8).
func (c *Conn) HandleTimeout(now time.Time) {
	// TIME-WAIT and the user timeout end the connection; check them first
	// so a retransmission is not sent by a connection that is ending.
	for _, t := range [...]Timer{TimerTimeWait, TimerUser, TimerRetransmit} {
		d := c.timers[t]
		if d.IsZero() || d.After(now) {
			continue
		}
		c.timers[t] = time.Time{}
		c.curKind, c.curTimer = CauseTimer, t
		if c.obs != nil {
			c.emit(Event{Time: now, Type: EventTimerFired, Timer: t})
		}
		switch t {
		case TimerTimeWait:
			c.timeWaitTimeout(now)
		case TimerUser:
			c.userTimeout(now)
		case TimerRetransmit:
			c.retransmitTimeout(now)
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
// (RFC 9293 §3.8.1, RFC 6298 §5.5–5.7). After too many tries the
// connection gives up with ErrTimeout.
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
	if c.retries >= limit {
		c.enterClosed(now, ErrTimeout)
		return
	}
	c.retries++
	c.rto = min(2*c.rto, c.cfg.maxRTO())
	switch {
	case c.state == SynSent:
		c.sendSyn(now, false, true)
	case c.sndUna == c.iss:
		// Our SYN,ACK is still unacknowledged (SYN-RECEIVED, or a CLOSE
		// from SYN-RECEIVED that moved on to FIN-WAIT-1).
		c.sendSyn(now, true, true)
	case c.sndWnd == 0 && c.sndUna == c.sndNxt && c.sndUna.LessThan(c.dataEnd()):
		c.sendWindowProbe(now)
	default:
		// Go back to the first unacknowledged byte and resend from there.
		c.rtxNxt = c.sndUna
		c.sendData(now)
		if c.sndWnd == 0 && c.rtxNxt == c.sndUna {
			c.sendWindowProbe(now)
		}
	}
}

// sendWindowProbe sends one byte beyond a zero window, as RFC 9293
// §3.8.6.1 requires of a sender facing a zero window, so the window's
// reopening is learned even if the update announcing it is lost.
func (c *Conn) sendWindowProbe(now time.Time) {
	c.tx = Segment{Seq: c.sndUna, Flags: header.ACK}
	c.tx.Payload = c.snd.peek(int(c.sndBuf.Size(c.sndUna)), 1)
	if len(c.tx.Payload) == 0 {
		return
	}
	c.send(now, &c.tx, ReasonRetransmit, c.sndUna.LessThan(c.sndNxt))
	next := c.sndUna.Add(1)
	if c.sndNxt.LessThan(next) {
		c.sndNxt = next
	}
	c.rtxNxt = c.sndNxt
	c.armRetransmit(now)
}

// armRetransmit starts the retransmission timer if it is not running
// (RFC 6298 §5.1).
func (c *Conn) armRetransmit(now time.Time) {
	if !c.timerArmed(TimerRetransmit) {
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
	c.rto = c.cfg.initialRTO()
	c.stopTimer(now, TimerRetransmit)
	c.stopTimer(now, TimerUser)
	if c.sndUna.LessThan(c.sndNxt) {
		c.armRetransmit(now)
		c.armUserTimeout(now)
	}
}

func (c *Conn) timerArmed(t Timer) bool { return !c.timers[t].IsZero() }

func (c *Conn) setTimer(now time.Time, t Timer, at time.Time) {
	c.timers[t] = at
	if c.obs != nil {
		c.emit(Event{Time: now, Type: EventTimerSet, Timer: t, Deadline: at})
	}
}

func (c *Conn) stopTimer(now time.Time, t Timer) {
	if c.timers[t].IsZero() {
		return
	}
	c.timers[t] = time.Time{}
	if c.obs != nil {
		c.emit(Event{Time: now, Type: EventTimerStopped, Timer: t})
	}
}

func (c *Conn) stopAllTimers(now time.Time) {
	for t := range c.timers {
		c.stopTimer(now, Timer(t))
	}
}

// startTimeWait enters TIME-WAIT: "start the time-wait timer, turn off the
// other timers" (RFC 9293 §3.10.7.4, eighth step). It also restarts the
// wait when the peer's FIN arrives again.
func (c *Conn) startTimeWait(now time.Time) {
	c.stopTimer(now, TimerRetransmit)
	c.stopTimer(now, TimerUser)
	c.setTimer(now, TimerTimeWait, now.Add(2*c.cfg.msl()))
	c.setState(now, TimeWait)
}
