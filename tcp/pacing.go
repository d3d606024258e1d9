package tcp

import "time"

// Pacing: a congestion control that sets a rate (cc.RateController, BBR)
// has the connection space its data segments out at that rate instead of
// sending a window's worth at once. The schedule is a single time, when
// the next segment is due; each data segment sent moves it on by its
// length over the rate. To spare a runtime a wake-up per segment, the
// sender may run ahead of the schedule by one send quantum (about a
// millisecond's worth, as Linux's TSO autosizing); and it may catch up by
// at most one quantum after waking late, so lateness costs no rate.
//
// While it waits, the connection's deadline (Deadline) includes the due
// time, and HandleTimeout sends what is due. The wait is not one of the
// Timers: it comes and goes with every quantum and is not reported as
// timer events.

// paced moves the schedule on for n bytes sent at t.
func (c *Conn) paced(l *lossState, t int64, n int) {
	rc := c.rateCtl()
	if rc == nil {
		return
	}
	rate := rc.PacingRate()
	if rate <= 0 {
		return
	}
	quantum := int64(float64(rc.SendQuantum()) / rate * 1e9)
	l.paceNext = max(l.paceNext, t-quantum) + int64(float64(n)/rate*1e9)
}

// paceHold reports whether pacing holds the next data segment back at now;
// if so, the connection waits for its due time.
func (c *Conn) paceHold(now time.Time) bool {
	l := c.lossSt
	if l == nil || l.paceNext == 0 || !c.cfg.rateBased() {
		return false
	}
	if l.paceNext <= now.UnixNano() {
		return false
	}
	l.paceWait = true
	return true
}

// paceDeadline is when a waiting connection's next segment is due, or the
// zero time.
func (c *Conn) paceDeadline() time.Time {
	if l := c.lossSt; l != nil && l.paceWait {
		return time.Unix(0, l.paceNext)
	}
	return time.Time{}
}

// paceTimeout sends what has come due.
func (c *Conn) paceTimeout(now time.Time) {
	l := c.lossSt
	if l == nil || !l.paceWait || now.UnixNano() < l.paceNext {
		return
	}
	l.paceWait = false
	c.flush(now)
}
