package tcp

import (
	"io"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// The user calls of RFC 9293 §3.10.1–§3.10.6, in the RFC's order.

// Connect is the active OPEN call (RFC 9293 §3.10.1): it sends
// <SEQ=ISS><CTL=SYN> and enters SYN-SENT. iss is the initial send sequence
// number; the runtime picks it (RFC 6528).
func (c *Conn) Connect(now time.Time, iss seqnum.Value) error {
	c.curKind, c.curCall = CauseCall, CallOpenActive
	c.callEvent(now)
	if c.state != Closed {
		return ErrConnectionExists
	}
	if !c.id.Remote.IsValid() || c.id.Remote.Port() == 0 {
		return ErrForeignUnspecified
	}
	c.resetTCB()
	c.iss = iss
	if c.tsOffset == 0 {
		c.tsOffset = tsOffsetFor(iss)
	}
	c.sndUna, c.sndNxt, c.rtxNxt = iss, iss.Add(1), iss.Add(1)
	c.sndBuf = iss.Add(1)
	c.setState(now, SynSent)
	c.sendSyn(now, false, false)
	return nil
}

// Listen is the passive OPEN call (RFC 9293 §3.10.1): the connection
// enters LISTEN and waits for a SYN. iss is the initial send sequence
// number its SYN,ACK will carry.
//
// The runtime creates one Conn per arriving SYN, with both sockets known,
// calls Listen and then Input with the SYN; a listening socket with an
// unspecified foreign socket is the runtime's business, not the TCB's.
func (c *Conn) Listen(now time.Time, iss seqnum.Value) error {
	c.curKind, c.curCall = CauseCall, CallOpenPassive
	c.callEvent(now)
	if c.state != Closed {
		return ErrConnectionExists
	}
	c.resetTCB()
	c.passive = true
	c.iss = iss
	if c.tsOffset == 0 {
		c.tsOffset = tsOffsetFor(iss)
	}
	c.setState(now, Listen)
	return nil
}

// Write is the SEND call (RFC 9293 §3.10.2). It queues as much of p as the
// send buffer holds and returns how much that was; the bytes go out as the
// windows allow. Data written before the connection is established waits
// for it. Writing after CLOSE returns ErrConnectionClosing.
func (c *Conn) Write(now time.Time, p []byte) (int, error) {
	c.curKind, c.curCall = CauseCall, CallSend
	switch c.state {
	case Closed:
		return 0, c.closedErr()
	case Listen:
		// "If the foreign socket is specified, then change the connection
		// from passive to active, select an ISS. Send a SYN segment,
		// set SND.UNA to ISS, SND.NXT to ISS+1. Enter SYN-SENT state."
		c.callEvent(now)
		c.passive = false
		c.sndUna, c.sndNxt, c.rtxNxt = c.iss, c.iss.Add(1), c.iss.Add(1)
		c.sndBuf = c.iss.Add(1)
		c.setState(now, SynSent)
		c.sendSyn(now, false, false)
		return c.snd.write(p), nil
	case SynSent, SynReceived, Established, CloseWait:
		if c.finQueued || c.closeAfter {
			return 0, ErrConnectionClosing
		}
		if len(p) == 0 {
			return 0, nil
		}
		n := c.snd.write(p)
		if c.state == Established || c.state == CloseWait {
			c.flush(now)
		}
		return n, nil
	default:
		// FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK, TIME-WAIT: "Return
		// "error: connection closing" and do not service request."
		return 0, ErrConnectionClosing
	}
}

// Read is the RECEIVE call (RFC 9293 §3.10.3). It moves received bytes into
// p. With nothing queued it returns 0 and nil while more may come, io.EOF
// once the peer's FIN has arrived, and the connection's error once it has
// been reset or timed out.
func (c *Conn) Read(now time.Time, p []byte) (int, error) {
	c.curKind, c.curCall = CauseCall, CallReceive
	if c.rcv.len() > 0 {
		n := c.rcv.read(p)
		c.rcvSpaceAdjust(now)
		if c.rcv.len() == 0 && c.ooo.empty() {
			// All read and nothing held past a hole: an idle
			// connection keeps no receive storage.
			c.rcv.release()
		}
		c.maybeWindowUpdate(now)
		return n, nil
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.finRcvd:
		// CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT, or CLOSED after a
		// normal close: "connection closing".
		return 0, io.EOF
	case c.state == Closed:
		return 0, ErrNotConnected
	}
	return 0, nil
}

// maybeWindowUpdate sends a window update after a read, but only when it
// matters to the sender: when the window we last advertised has become
// small — less than half of what we could offer now — and the right edge
// can move by at least a full segment or half the buffer, whichever is
// less. The second condition is receiver-side silly window syndrome
// avoidance (RFC 9293 §3.8.6.2.2); the first keeps a steady stream from
// drawing a pure window update after every read (Linux's
// tcp_cleanup_rbuf waits for the window to double, too). A larger window
// otherwise rides on the next ACK.
func (c *Conn) maybeWindowUpdate(now time.Time) {
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		return
	}
	wnd := c.rcvWindow()
	edge := c.rcvNxt.Add(seqnum.Size(wnd))
	if !c.rcvAdv.LessThan(edge) {
		return
	}
	advertised := uint32(0)
	if c.rcvNxt.LessThan(c.rcvAdv) {
		advertised = uint32(c.rcvNxt.Size(c.rcvAdv))
	}
	step := min(c.rcv.capacity()/2, int(c.cfg.mss()))
	if 2*advertised <= wnd && int(c.rcvAdv.Size(edge)) >= step {
		c.sendAck(now, ReasonWindowUpdate)
	}
}

// Close is the CLOSE call (RFC 9293 §3.10.4): this side has no more to
// send. The FIN follows the data already written; the peer may go on
// sending (a half close) until it closes too.
func (c *Conn) Close(now time.Time) error {
	c.curKind, c.curCall = CauseCall, CallClose
	c.callEvent(now)
	switch c.state {
	case Closed:
		return c.closedErr()
	case Listen, SynSent:
		// "Any outstanding RECEIVEs are returned with "error: closing"
		// responses. Delete TCB, enter CLOSED state, and return." A
		// SYN-SENT connection's queued SENDs get the same answer.
		c.enterClosed(now, nil)
		return nil
	case SynReceived:
		// "If no SENDs have been issued and there is no pending data to
		// send, then form a FIN segment and send it, and enter FIN-WAIT-1
		// state; otherwise, queue for processing after entering
		// ESTABLISHED state."
		if c.snd.len() > 0 {
			c.closeAfter = true
			return nil
		}
		c.queueFin(now, FinWait1)
		return nil
	case Established:
		// "Queue this until all preceding SENDs have been segmentized,
		// then form a FIN segment and send it. In any case, enter
		// FIN-WAIT-1 state."
		c.queueFin(now, FinWait1)
		return nil
	case CloseWait:
		// "Queue this request until all preceding SENDs have been
		// segmentized; then send a FIN segment, enter LAST-ACK state."
		c.queueFin(now, LastAck)
		return nil
	default:
		// FIN-WAIT-1, FIN-WAIT-2: "Strictly speaking, this is an error";
		// CLOSING, LAST-ACK, TIME-WAIT: "Respond with "error: connection
		// closing"."
		return ErrConnectionClosing
	}
}

// queueFin records that a FIN follows the queued data, moves to next and
// sends what can be sent.
func (c *Conn) queueFin(now time.Time, next State) {
	c.finQueued = true
	c.closeAfter = false
	c.finSeq = c.dataEnd()
	c.setState(now, next)
	c.flush(now)
}

// Abort is the ABORT call (RFC 9293 §3.10.5): the connection ends at once,
// queued data is discarded, and a synchronized connection tells its peer
// with <SEQ=SND.NXT><CTL=RST>.
func (c *Conn) Abort(now time.Time) error {
	c.curKind, c.curCall = CauseCall, CallAbort
	c.callEvent(now)
	switch c.state {
	case Closed:
		return c.closedErr()
	case SynReceived, Established, FinWait1, FinWait2, CloseWait:
		c.sendReset(now, c.sndNxt, ReasonAbort)
	}
	// LISTEN, SYN-SENT: no RST. CLOSING, LAST-ACK, TIME-WAIT: "Respond with
	// "ok" and delete the TCB".
	c.enterClosed(now, ErrConnectionAborted)
	return nil
}

// closedErr is the error calls on a CLOSED connection return: why it
// ended, or "connection does not exist".
func (c *Conn) closedErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrNotConnected
}

func (c *Conn) callEvent(now time.Time) {
	if c.observing(EventCall) {
		c.emit(Event{Time: now, Type: EventCall, Call: c.curCall})
	}
}

// SetTimestampOffset fixes the offset added to the timestamp clock
// (RFC 7323 §5.4), before the OPEN call. RFC 7323 §7.1 suggests a keyed
// hash of the connection's addresses: every incarnation of one pair of
// sockets then sends timestamps that keep increasing, so the peer's
// TIME-WAIT takes a new SYN from it (RFC 6191). Without it, the offset is
// derived from the ISS. Zero means none.
func (c *Conn) SetTimestampOffset(off uint32) { c.tsOffset = off }

// TimestampsOn reports whether the connection uses timestamps (RFC 7323),
// as agreed in its handshake.
func (c *Conn) TimestampsOn() bool { return c.tsOK }

// tsOffsetFor derives the connection's timestamp offset from its ISS, which
// the runtime already draws from a keyed hash (RFC 6528): timestamps then
// say nothing about the host's clock or its other connections (RFC 7323
// §5.4, §7.1).
func tsOffsetFor(iss seqnum.Value) uint32 { return uint32(iss) * 2654435761 }

// ReopenAllowed reports whether a SYN arriving for this connection in
// TIME-WAIT may open a new incarnation at once (RFC 9293 §3.6.1, RFC 6191):
// with timestamps, when its timestamp is newer than TS.Recent; without,
// when its sequence number lies beyond RCV.NXT, so no old duplicate of
// this incarnation can be taken for new data. The runtime then deletes
// this TCB and treats the SYN as it would any new one.
func (c *Conn) ReopenAllowed(seg *Segment) bool {
	if c.state != TimeWait || seg.Flags&(header.SYN|header.ACK|header.RST) != header.SYN {
		return false
	}
	if c.tsOK && seg.Options.HasTimestamps {
		return int32(seg.Options.TSVal-c.tsRecent) > 0
	}
	return seg.Seq.GreaterThan(c.rcvNxt)
}

// ResumeFromCookie completes a passive open whose SYN was answered with a
// SYN cookie (RFC 4987 §3.6): the connection, in LISTEN with the cookie as
// its ISS, takes the ACK that returned the cookie as if its SYN-RECEIVED
// state had been kept, with mss as the MSS the cookie recorded. Options
// beyond the MSS were not kept and stay off.
func (c *Conn) ResumeFromCookie(now time.Time, seg *Segment, mss uint16) error {
	c.curKind = CauseSegment
	if c.observing(EventState) {
		c.curSeg = seg.Info()
	}
	if c.state != Listen || seg.Ack != c.iss.Add(1) || seg.Flags&(header.SYN|header.RST|header.ACK) != header.ACK {
		return ErrNotConnected
	}
	c.irs = seg.Seq.Sub(1)
	c.rcvNxt, c.rcvUP, c.rcvAdv = seg.Seq, seg.Seq, seg.Seq
	c.sndUna, c.sndNxt, c.rtxNxt, c.sndBuf = c.iss, c.iss.Add(1), c.iss.Add(1), c.iss.Add(1)
	c.wsOK, c.tsOK, c.sackOK = false, false, false
	c.rcvShift, c.sndShift = 0, 0
	c.peerMSS = int(mss)
	c.sndMSS = max(min(int(mss), int(c.cfg.mss())), 1)
	c.sndWnd = uint32(seg.Window)
	c.sndWL1, c.sndWL2 = seg.Seq, c.iss
	c.setState(now, SynReceived)
	c.Input(now, seg)
	return nil
}

// Fail ends the connection with err and sends nothing, as an ABORT that
// the runtime makes on the user's behalf: an ICMP hard error during the
// handshake, for instance (RFC 1122 §4.2.3.9).
func (c *Conn) Fail(now time.Time, err error) {
	c.curKind, c.curCall = CauseCall, CallAbort
	c.callEvent(now)
	if c.state != Closed {
		c.enterClosed(now, err)
	}
}
