package tcp

import (
	"math"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp/cc"
)

// Input is the SEGMENT ARRIVES event (RFC 9293 §3.10.7): it processes one
// arriving segment in the RFC's order, changes state, and sends what the
// rules say to send. The segment is only read during the call.
func (c *Conn) Input(now time.Time, seg *Segment) {
	c.curKind = CauseSegment
	c.segsIn++
	if c.mask != 0 {
		// The segment is the cause of any state change it brings.
		c.curSeg = seg.Info()
		if c.observing(EventSegmentIn) {
			c.emit(Event{Time: now, Type: EventSegmentIn, Segment: c.curSeg})
		}
	}
	switch c.state {
	case Closed:
		c.inputClosed(now, seg)
	case Listen:
		c.inputListen(now, seg)
	case SynSent:
		c.inputSynSent(now, seg)
	default:
		c.inputSynchronized(now, seg)
	}
}

func (c *Conn) drop(now time.Time, seg *Segment, why Reason) {
	if c.observing(EventDrop) {
		c.emit(Event{Time: now, Type: EventDrop, Segment: seg.Info(), Reason: why})
	}
}

// ResetFor returns the reply RFC 9293 §3.10.7.1 gives to a segment that
// arrives for no connection (the CLOSED state): nothing for an RST;
// otherwise <SEQ=SEG.ACK><CTL=RST> if the segment has ACK, or
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> if it has not.
func ResetFor(seg *Segment) (Segment, bool) {
	if seg.Flags&header.RST != 0 {
		return Segment{}, false
	}
	if seg.Flags&header.ACK != 0 {
		return Segment{Seq: seg.Ack, Flags: header.RST}, true
	}
	return Segment{Seq: 0, Ack: seg.Seq.Add(seg.Len()), Flags: header.RST | header.ACK}, true
}

// inputClosed: RFC 9293 §3.10.7.1, "If the state is CLOSED (i.e., TCB does
// not exist) then all data in the incoming segment is discarded."
func (c *Conn) inputClosed(now time.Time, seg *Segment) {
	c.drop(now, seg, ReasonResetNoConn)
	if rst, ok := ResetFor(seg); ok {
		c.transmit(now, &rst, ReasonResetNoConn, false)
	}
}

// inputListen: RFC 9293 §3.10.7.2.
func (c *Conn) inputListen(now time.Time, seg *Segment) {
	// "First, check for a RST: An incoming RST segment could not be valid
	// since it could not have been sent in response to anything sent by
	// this incarnation of the connection. An incoming RST should be
	// ignored."
	if seg.Flags&header.RST != 0 {
		c.drop(now, seg, ReasonRstIgnored)
		return
	}
	// "Second, check for an ACK: Any acknowledgment is bad if it arrives
	// on a connection still in the LISTEN state. An acceptable reset
	// segment should be formed for any arriving ACK-bearing segment."
	if seg.Flags&header.ACK != 0 {
		c.drop(now, seg, ReasonResetBadAck)
		c.sendReset(now, seg.Ack, ReasonResetBadAck)
		return
	}
	// "Third, check for a SYN": set RCV.NXT to SEG.SEQ+1, IRS to SEG.SEQ,
	// send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>, SND.NXT to ISS+1, SND.UNA
	// to ISS, and enter SYN-RECEIVED. Text and other controls arriving
	// with the SYN are dropped; the peer sends them again.
	if seg.Flags&header.SYN != 0 {
		c.irs = seg.Seq
		c.rcvNxt = seg.Seq.Add(1)
		c.rcvUP, c.rcvAdv = c.rcvNxt, c.rcvNxt
		c.sndUna, c.sndNxt, c.rtxNxt = c.iss, c.iss.Add(1), c.iss.Add(1)
		c.sndBuf = c.iss.Add(1)
		c.takeSynOptions(seg)
		c.lastRecv = now
		c.sndWnd = uint32(seg.Window) // RFC 7323 §2.2: a SYN's window is never scaled
		c.sndWL1, c.sndWL2 = seg.Seq, c.iss
		c.setState(now, SynReceived)
		c.sendSyn(now, true, false)
		return
	}
	// "Fourth, other data or control: ... drop the segment and return."
	c.drop(now, seg, ReasonBadState)
}

// inputSynSent: RFC 9293 §3.10.7.3.
func (c *Conn) inputSynSent(now time.Time, seg *Segment) {
	ack := seg.Flags&header.ACK != 0
	// "First, check the ACK bit: If SEG.ACK =< ISS or SEG.ACK > SND.NXT,
	// send a reset (unless the RST bit is set, if so drop the segment and
	// return) <SEQ=SEG.ACK><CTL=RST> and discard the segment."
	if ack && (seg.Ack.LessThanEq(c.iss) || seg.Ack.GreaterThan(c.sndNxt)) {
		c.drop(now, seg, ReasonResetBadAck)
		if seg.Flags&header.RST == 0 {
			c.sendReset(now, seg.Ack, ReasonResetBadAck)
		}
		return
	}
	// "Second, check the RST bit: If the ACK was acceptable, then signal
	// to the user "error: connection reset", drop the segment, enter
	// CLOSED state, delete TCB, and return. Otherwise (no ACK), drop the
	// segment and return." An RST answering our SYN is a refusal, and
	// Go programs expect ECONNREFUSED for it.
	if seg.Flags&header.RST != 0 {
		if ack {
			c.enterClosed(now, ErrConnectionRefused)
			return
		}
		c.drop(now, seg, ReasonRstIgnored)
		return
	}
	// Third, the security check has nothing to compare here.
	//
	// "Fourth, check the SYN bit", reached only when the ACK is
	// acceptable or absent.
	if seg.Flags&header.SYN == 0 {
		// "Fifth, if neither of the SYN or RST bits is set, then drop the
		// segment and return."
		c.drop(now, seg, ReasonBadState)
		return
	}
	c.irs = seg.Seq
	c.rcvNxt = seg.Seq.Add(1)
	c.rcvUP, c.rcvAdv = c.rcvNxt, c.rcvNxt
	c.takeSynOptions(seg)
	c.lastRecv = now
	if ack {
		c.sndUna = seg.Ack
		c.sampleFromAck(now, seg)
	}
	c.sndWnd = uint32(seg.Window)
	c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
	c.sndWL1, c.sndWL2 = seg.Seq, c.sndUna
	if c.sndUna.GreaterThan(c.iss) {
		// "If SND.UNA > ISS (our SYN has been ACKed), change the connection
		// state to ESTABLISHED, form an ACK segment
		// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it. Data or
		// controls that were queued for transmission MAY be included."
		c.onAckProgress(now)
		c.setState(now, Established)
		c.established(now)
		c.ackNow, c.ackReason = true, ReasonHandshakeAck
		// "If there are other controls or text in the segment, then
		// continue processing at the sixth step below where the URG bit
		// is checked; otherwise, return."
		if len(seg.Payload) > 0 || seg.Flags&(header.FIN|header.URG) != 0 {
			c.processText(now, seg, seg.Seq.Add(1), seg.Payload, seg.Flags&header.FIN != 0)
		}
		c.flush(now)
		return
	}
	// "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
	// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it." This is a
	// simultaneous open (RFC 9293 Figure 7). Text with the SYN is not
	// kept; the peer sends it again.
	c.stopTimer(now, TimerRetransmit)
	c.retries = 0
	c.rto = c.cfg.initialRTO()
	c.setState(now, SynReceived)
	c.sendSyn(now, true, false)
}

// inputSynchronized handles the states from SYN-RECEIVED on: RFC 9293
// §3.10.7.4 "Otherwise", with its eight steps in order.
func (c *Conn) inputSynchronized(now time.Time, seg *Segment) {
	seq := seg.Seq
	payload := seg.Payload
	syn := seg.Flags&header.SYN != 0
	fin := seg.Flags&header.FIN != 0

	if c.state == SynReceived && syn && seq == c.irs {
		if seg.Flags&header.ACK == 0 {
			// The peer's SYN again: our SYN,ACK was lost. Answer with the
			// SYN,ACK rather than step one's bare ACK, which a peer in
			// SYN-SENT would drop (Linux's tcp_check_req does the same).
			c.drop(now, seg, ReasonDupSyn)
			c.sendSyn(now, true, true)
			return
		}
		// The peer's SYN,ACK crossing ours in a simultaneous open (RFC 9293
		// Figure 7, line 6): its SYN was already received, so only the
		// acknowledgment is new. Treat the SYN as the old part of a
		// segment that straddles RCV.NXT ("only the new parts are
		// processed") and go on.
		seq = seq.Add(1)
		syn = false
	}

	// RFC 7323 §5.3 R1, before the sequence check: a segment whose
	// timestamp is older than TS.Recent is an old duplicate from an
	// earlier wrap of the sequence space. Acknowledge and drop it.
	if c.pawsReject(seg) {
		c.drop(now, seg, ReasonPAWS)
		c.sendAck(now, ReasonPAWS)
		return
	}

	// First: check the sequence number (the four cases of RFC 9293
	// §3.10.7.4).
	segLen := seqnum.Size(len(payload))
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	// The window the test uses is what we offered, which may exceed the
	// free space by the rounding of the window scale; text is trimmed to
	// the free space below.
	wnd := seqnum.Size(max(c.rcvWindow(), c.advertised()))
	room := seqnum.Size(c.rcvWindow())
	if !c.acceptable(seq, segLen, wnd) {
		if seg.Flags&header.ACK != 0 && c.ackPlausible(seg.Ack) {
			// Unacceptable, but from the peer: its ACK is one we could
			// have drawn. A sender whose full window was lost sends ACKs
			// at our right edge; they still show it is alive, so they
			// count against keep-alive's verdict (RFC 1122 §4.2.3.6).
			c.lastRecv = now
			c.kaProbes = 0
		}
		if c.state == TimeWait && fin && seq.Add(segLen) == c.rcvNxt {
			// The peer's FIN again: our last ACK was lost. "Acknowledge it,
			// and restart the 2 MSL timeout" (eighth step, TIME-WAIT).
			c.drop(now, seg, ReasonTimeWaitReack)
			c.sendAck(now, ReasonTimeWaitReack)
			c.startTimeWait(now)
			return
		}
		zeroWindowProbe := wnd == 0 && seq == c.rcvNxt && !syn
		if !zeroWindowProbe {
			// "If an incoming segment is not acceptable, an acknowledgment
			// should be sent in reply (unless the RST bit is set, if so
			// drop the segment and return)."
			c.drop(now, seg, ReasonOutOfWindow)
			if seg.Flags&header.RST == 0 {
				why := ReasonOutOfWindow
				if start := dataStart(seq, syn); len(payload) > 0 && start.Add(seqnum.Size(len(payload))).LessThanEq(c.rcvNxt) {
					// Data we had already: a D-SACK block says so (RFC
					// 2883 §4).
					c.noteDuplicate(start, start.Add(seqnum.Size(len(payload))))
					why = ReasonDuplicate
				}
				c.sendAck(now, why)
			}
			return
		}
		// "If the RCV.WND is zero, no segments will be acceptable, but
		// special allowance should be made to accept valid ACKs, URGs,
		// and RSTs": process the controls, drop the text and FIN, and
		// acknowledge so the sender learns the window is still shut.
		payload, fin = nil, false
		c.ackNow, c.ackReason = true, ReasonOutOfWindow
	}
	// Trim what lies before RCV.NXT or beyond the window: "If a segment's
	// contents straddle the boundary between old and new, only the new
	// parts are processed."
	if seq.LessThan(c.rcvNxt) {
		if start := dataStart(seq, syn); len(payload) > 0 && start.LessThan(c.rcvNxt) {
			// The part before RCV.NXT arrived before: report it (RFC 2883
			// §4).
			c.noteDuplicate(start, seqnum.Min(c.rcvNxt, start.Add(seqnum.Size(len(payload)))))
		}
		skip := int(seq.Size(c.rcvNxt))
		if syn {
			skip-- // the SYN sits before the first data byte
			syn = false
		}
		if skip >= len(payload) {
			payload = nil
		} else {
			payload = payload[skip:]
		}
		seq = c.rcvNxt
	}
	if off := int(c.rcvNxt.Size(seq)); len(payload) > int(room)-off {
		payload = payload[:max(int(room)-off, 0)]
		fin = false // the FIN lies beyond the window
	}
	// The segment is acceptable: it counts as a sign of life, and its
	// timestamp may become TS.Recent (RFC 7323 §4.3).
	c.lastRecv = now
	c.kaProbes = 0
	c.updateTSRecent(seg)

	// Second: check the RST bit, with RFC 5961 §3.2's rule that only an
	// RST at exactly RCV.NXT resets the connection; one elsewhere in the
	// window draws a challenge ACK.
	if seg.Flags&header.RST != 0 {
		if seg.Seq != c.rcvNxt {
			c.drop(now, seg, ReasonChallengeAck)
			c.sendAck(now, ReasonChallengeAck)
			return
		}
		c.inputReset(now, seg)
		return
	}

	// Third: security check — there is no compartment to compare.

	// Fourth: check the SYN bit.
	if syn {
		if c.state == SynReceived && c.passive {
			// "If the connection was initiated with a passive OPEN, then
			// return this connection to the LISTEN state and return."
			c.drop(now, seg, ReasonBadState)
			c.returnToListen(now)
			return
		}
		// RFC 5961 §4.2 via RFC 9293: a SYN in a synchronized state,
		// whatever its sequence number, gets a challenge ACK and is
		// dropped.
		c.drop(now, seg, ReasonChallengeAck)
		c.sendAck(now, ReasonChallengeAck)
		return
	}

	// Fifth: check the ACK field. "If the ACK bit is off, drop the segment
	// and return."
	if seg.Flags&header.ACK == 0 {
		c.drop(now, seg, ReasonNoAck)
		c.flush(now)
		return
	}
	if !c.processAck(now, seg, seq, payload, fin) {
		return
	}

	// Sixth to eighth: the URG bit, the segment text and the FIN bit.
	c.processText(now, seg, seq, payload, fin)
	c.flush(now)
}

// dataStart is where a segment's data begins: after its SYN, if any.
func dataStart(seq seqnum.Value, syn bool) seqnum.Value {
	if syn {
		return seq.Add(1)
	}
	return seq
}

// ackPlausible reports whether ack lies where an ACK from the real peer
// can: (SND.UNA - MAX.SND.WND) =< ack =< SND.NXT (RFC 5961 §5.2).
func (c *Conn) ackPlausible(ack seqnum.Value) bool {
	return c.sndUna.Sub(seqnum.Size(c.maxSndWnd)).LessThanEq(ack) && ack.LessThanEq(c.sndNxt)
}

// acceptable is the sequence-number test of RFC 9293 §3.10.7.4, first
// step:
//
//	Segment Length  Receive Window  Test
//	0               0               SEG.SEQ = RCV.NXT
//	0               >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
//	>0              0               not acceptable
//	>0              >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
//	                                or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND
//
// with one leniency, Linux's: a zero-length segment at exactly
// RCV.NXT+RCV.WND is acceptable when the window is open.
func (c *Conn) acceptable(seq seqnum.Value, segLen, wnd seqnum.Size) bool {
	switch {
	case segLen == 0 && wnd == 0:
		return seq == c.rcvNxt
	case segLen == 0:
		// The right edge itself is taken too, as Linux's tcp_sequence
		// does: a peer that has sent a whole window puts SND.NXT there,
		// and its pure ACKs must not be lost for being one past the
		// window.
		return seq.InWindow(c.rcvNxt, wnd+1)
	case wnd == 0:
		return false
	default:
		return seq.InWindow(c.rcvNxt, wnd) || seq.Add(segLen-1).InWindow(c.rcvNxt, wnd)
	}
}

// inputReset applies an acceptable RST (RFC 9293 §3.10.7.4, second step).
func (c *Conn) inputReset(now time.Time, seg *Segment) {
	switch c.state {
	case SynReceived:
		if c.passive {
			// "If this connection was initiated with a passive OPEN (i.e.,
			// came from the LISTEN state), then return this connection to
			// LISTEN state and return. The user need not be informed."
			c.returnToListen(now)
			return
		}
		// "If this connection was initiated with an active OPEN (i.e., came
		// from SYN-SENT state), then the connection was refused; signal
		// the user "connection refused"."
		c.enterClosed(now, ErrConnectionRefused)
	case Established, FinWait1, FinWait2, CloseWait:
		// "Any outstanding RECEIVEs and SEND should receive "reset"
		// responses. All segment queues should be flushed."
		c.enterClosed(now, ErrConnectionReset)
	case TimeWait:
		if c.cfg.RFC1337 {
			// RFC 1337 §3: ignore RST in TIME-WAIT, so an old segment
			// cannot cut the 2MSL wait short.
			c.drop(now, seg, ReasonRstIgnored)
			return
		}
		c.enterClosed(now, nil)
	default:
		// CLOSING, LAST-ACK: "enter the CLOSED state, delete the TCB, and
		// return."
		c.enterClosed(now, nil)
	}
}

// returnToListen takes a passively opened connection from SYN-RECEIVED
// back to LISTEN, forgetting the peer's SYN.
func (c *Conn) returnToListen(now time.Time) {
	if c.closeAfter {
		// The user has already closed it: there is no listener to go
		// back to.
		c.enterClosed(now, nil)
		return
	}
	c.stopAllTimers(now)
	c.snd.reset()
	c.rcv.reset()
	c.retries = 0
	c.rto = c.cfg.initialRTO()
	c.ackNow = false
	c.setState(now, Listen)
}

// processAck is the fifth step of RFC 9293 §3.10.7.4. It reports whether
// processing goes on to the text and FIN.
func (c *Conn) processAck(now time.Time, seg *Segment, seq seqnum.Value, payload []byte, fin bool) bool {
	ack := seg.Ack
	if c.state == SynReceived {
		// "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state
		// and continue processing with the variables below set to:
		// SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK.
		// If the segment acknowledgment is not acceptable, form a reset
		// segment <SEQ=SEG.ACK><CTL=RST> and send it."
		if !(c.sndUna.LessThan(ack) && ack.LessThanEq(c.sndNxt)) {
			c.drop(now, seg, ReasonResetBadAck)
			c.sendReset(now, ack, ReasonResetBadAck)
			return false
		}
		c.sndWnd = uint32(seg.Window) << c.sndShift
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWL1, c.sndWL2 = seg.Seq, ack
		c.sampleFromAck(now, seg)
		c.setState(now, Established)
		c.established(now)
		if c.closeAfter {
			// A CLOSE that waited for ESTABLISHED (RFC 9293 §3.10.4,
			// SYN-RECEIVED) goes ahead now, as the user's call.
			c.curKind, c.curCall = CauseCall, CallClose
			c.queueFin(now, FinWait1)
			c.curKind = CauseSegment
		}
	}

	// RFC 5961 §5.2: the ACK is acceptable only if
	// (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT; otherwise send an
	// ACK and drop the segment. Above SND.NXT is RFC 9293's "ACK for
	// something not yet sent".
	if ack.GreaterThan(c.sndNxt) {
		c.drop(now, seg, ReasonAckTooNew)
		c.sendAck(now, ReasonAckTooNew)
		return false
	}
	if ack.LessThan(c.sndUna.Sub(seqnum.Size(c.maxSndWnd))) {
		c.drop(now, seg, ReasonOutOfWindow)
		c.sendAck(now, ReasonOutOfWindow)
		return false
	}

	switch c.state {
	case TimeWait:
		// "The only thing that can arrive in this state is a retransmission
		// of the remote FIN. Acknowledge it, and restart the 2 MSL
		// timeout." That is the eighth step's business; go on to it.
		return true
	}

	// ESTABLISHED and the states that process ACKs as it does.
	c.processAckData(now, seg, ack, payload, fin)
	// "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be
	// updated. If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =<
	// SEG.ACK)), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set
	// SND.WL2 <- SEG.ACK." A segment whose ACK is newer than SND.WL2 also
	// updates it, though its SEG.SEQ be older — a retransmission by the
	// peer carries its latest window — as Linux's tcp_may_update_window
	// does. The window's right edge is SND.WL2 + SND.WND (sndWndEnd).
	if c.sndUna.LessThanEq(ack) && (c.sndWL1.LessThan(seg.Seq) || c.sndWL2.LessThan(ack) ||
		(c.sndWL1 == seg.Seq && c.sndWL2.LessThanEq(ack))) {
		opened := c.sndWnd == 0 && seg.Window > 0
		c.sndWnd = uint32(seg.Window) << c.sndShift
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWL1, c.sndWL2 = seg.Seq, ack
		if opened {
			// The window reopened: the persist timer has done its work.
			c.stopTimer(now, TimerPersist)
			c.probes = 0
		}
	}

	switch c.state {
	case FinWait1:
		// "In addition to the processing for the ESTABLISHED state, if the
		// FIN segment is now acknowledged, then enter FIN-WAIT-2 and
		// continue processing in that state." When this same segment
		// carries the peer's FIN in order, the eighth step takes the
		// connection from FIN-WAIT-1 straight to TIME-WAIT ("if our FIN
		// has been ACKed (perhaps in this segment)"), so stay for it.
		if c.finAcked() && !(fin && seq == c.rcvNxt) {
			c.setState(now, FinWait2)
		}
	case Closing:
		// "In addition to the processing for the ESTABLISHED state, if the
		// ACK acknowledges our FIN, then enter the TIME-WAIT state;
		// otherwise, ignore the segment."
		if c.finAcked() {
			c.startTimeWait(now)
		} else {
			c.flush(now)
		}
		return false
	case LastAck:
		// "The only thing that can arrive in this state is an
		// acknowledgment of our FIN. If our FIN is now acknowledged,
		// delete the TCB, enter the CLOSED state, and return." Data
		// written before the CLOSE may still be going out, so the ACK
		// was processed as in ESTABLISHED above, and sending goes on.
		if c.finAcked() {
			c.enterClosed(now, nil)
		} else {
			c.flush(now)
		}
		return false
	}
	return true
}

// processAckData is the fifth step's work for ESTABLISHED and the states
// that process ACKs as it does: take the SACK blocks and the cumulative
// ACK, feed the congestion controller and the RTT estimator, and count
// duplicate ACKs toward fast retransmit (RFC 5681 §3.2, RFC 6675 §5).
func (c *Conn) processAckData(now time.Time, seg *Segment, ack seqnum.Value, payload []byte, fin bool) {
	var rs rateAcc
	l := c.lossSt
	lost := 0
	if l != nil {
		c.rackAcked(now, seg, seqnum.Max(ack, c.sndUna), &rs) // RFC 8985 §6.2 step 2
		l.endAppLimited()
		lost = l.lostB
	}
	progress := c.sndUna.LessThan(ack)
	c.takeAck(now, seg, ack, payload, fin)
	if l != nil {
		delivered := l.delivered
		if c.rackOn() {
			c.rackReorderWindow(seg) // RFC 8985 §6.2 step 4
			c.rackOnAck(now)         // RFC 8985 §6.2 steps 4, 5; §7.4
			if progress {
				c.armLossProbe(now) // RFC 8985 §7.2
			}
		} else if !c.sndUna.LessThan(c.sndNxt) {
			c.releaseLoss()
		}
		if c.lossSt == l {
			lost = l.lostB - lost
		} else {
			lost = 0 // everything was delivered
		}
		c.rateSample(now, &rs, delivered, lost)
	}
	if progress && c.ccOn {
		c.growSendBuffer()
	}
}

// takeAck is processAckData's RFC 5681/6675 part.
func (c *Conn) takeAck(now time.Time, seg *Segment, ack seqnum.Value, payload []byte, fin bool) {
	sackNew := c.takeSACK(seg)
	switch {
	case c.sndUna.LessThan(ack):
		flight := c.inFlight()
		acked := int(c.sndUna.Size(ack))
		appLimited := c.ccOn && flight+c.sndMSS < c.cwnd()
		c.ackSendQueue(now, ack)
		rtt := c.sampleFromAck(now, seg)
		if !c.ccOn {
			return
		}
		if c.inRecovery {
			if !c.sndUna.LessThan(c.recover) {
				// A full ACK: everything outstanding when recovery began
				// has arrived (RFC 6582 §3.2 step 6, RFC 6675 §5).
				c.inRecovery = false
				c.dupAcks = 0
				c.ctl().OnRecoveryEnd(now)
				c.rackRecoveryEnd()
			} else if !c.sackOK {
				// A partial ACK: the next hole is lost too; resend it at
				// once (RFC 6582 §3.2 step 5).
				c.dupAcks = 0
				c.retransmitAt(now, c.sndUna, ReasonFastRetransmit)
			}
			return
		}
		c.dupAcks = 0
		if c.cc == nil && appLimited {
			// The ACK of our SYN, or of data sent while far below the
			// window: it only tells the algorithm when it came. Note it
			// for the algorithm to hear once it exists (ctl).
			c.ccAckAt, c.ccAckEmptied = now.UnixNano(), acked >= flight
			return
		}
		c.ctl().OnAck(cc.Ack{Now: now, Acked: acked, InFlight: flight, RTT: rtt, SRTT: c.srtt, MinRTT: c.minRTT, AppLimited: appLimited})
	case ack == c.sndUna && c.sndUna.LessThan(c.sndNxt) && len(payload) == 0 && !fin &&
		(sackNew || uint32(seg.Window)<<c.sndShift == c.sndWnd):
		// A duplicate ACK (RFC 5681 §2), or one that SACKs new data
		// (RFC 6675 §2).
		if c.dupAcks < math.MaxInt32 {
			c.dupAcks++
		}
		if c.observing(EventDrop) {
			c.emit(Event{Time: now, Type: EventDrop, Segment: seg.Info(), Reason: ReasonDupAck})
		}
		// With RACK (RFC 8985 §6.2), time decides loss, not the count of
		// duplicate ACKs: rackOnAck enters recovery.
		if c.ccOn && !c.inRecovery && c.recover.LessThanEq(c.sndUna) && !c.rackOn() &&
			(c.dupAcks >= dupThresh || c.sackOK && c.isLost(c.sndUna)) {
			c.enterRecovery(now)
		}
	}
}

// ackSendQueue takes SEG.ACK into SND.UNA: "If SND.UNA < SEG.ACK =<
// SND.NXT, then set SND.UNA <- SEG.ACK. Any segments on the retransmission
// queue that are thereby entirely acknowledged are removed." A duplicate
// ACK (SEG.ACK =< SND.UNA) changes nothing.
func (c *Conn) ackSendQueue(now time.Time, ack seqnum.Value) {
	if !c.sndUna.LessThan(ack) {
		return
	}
	c.sndUna = ack
	if c.rtxNxt.LessThan(ack) {
		c.rtxNxt = ack
	}
	if c.highRxt.LessThan(ack) {
		c.highRxt = ack
	}
	c.sacked.trimBelow(ack)
	// Drop the acknowledged data bytes; the SYN and FIN hold no bytes.
	dataAcked := ack
	if end := c.dataEnd(); end.LessThan(dataAcked) {
		dataAcked = end
	}
	if c.sndBuf.LessThan(dataAcked) {
		c.snd.discard(int(c.sndBuf.Size(dataAcked)))
		c.sndBuf = dataAcked
		if c.snd.len() == 0 {
			c.snd.release() // all acknowledged: keep no send storage
		}
	}
	c.probes = 0
	c.onAckProgress(now)
}

// established runs on entering ESTABLISHED: congestion control starts
// from the MSS the handshake agreed, and keep-alive from now.
func (c *Conn) established(now time.Time) {
	c.startCC()
	c.recover = c.sndUna
	c.highRxt = c.sndUna
	c.lastRecv = now
	if c.keepAlive {
		c.setTimer(now, TimerKeepAlive, now.Add(c.kaIdle))
	}
}

// processText is the sixth, seventh and eighth steps of RFC 9293
// §3.10.7.4: the urgent pointer, the segment text and the FIN. seq and
// payload have been trimmed to start at or after RCV.NXT and to end within
// the window; fin is false when the FIN was trimmed away.
func (c *Conn) processText(now time.Time, seg *Segment, seq seqnum.Value, payload []byte, fin bool) {
	receiving := c.state == Established || c.state == FinWait1 || c.state == FinWait2

	// Sixth: check the URG bit. "If the URG bit is set, RCV.UP <-
	// max(RCV.UP,SEG.UP), and signal the user that the remote side has
	// urgent data if the urgent pointer (RCV.UP) is in advance of the
	// data consumed." Other states ignore it.
	if receiving && seg.Flags&header.URG != 0 {
		up := seg.Seq.Add(seqnum.Size(seg.Urgent))
		if c.rcvUP.LessThan(up) {
			c.rcvUP = up
			c.urgent = true
		}
	}

	// Seventh: process the segment text.
	if len(payload) > 0 {
		if !receiving {
			// CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not
			// occur since a FIN has been received from the remote side.
			// Ignore the segment text."
			c.drop(now, seg, ReasonTextAfterFin)
			return
		}
		// A full-sized segment (RFC 9293 §3.8.6.3) is at most the MSS we
		// announced: anything longer was coalesced on its way in (GRO, a
		// TUN device's offloads) from several, and counts as several
		// towards the ACK owed for every second one.
		c.rcvMSS = max(c.rcvMSS, clamp32(min(len(seg.Payload), int(c.cfg.mss()))))
		if seq != c.rcvNxt {
			// Data beyond RCV.NXT: "Segments with higher beginning
			// sequence numbers than RCV.NXT may be held for later
			// processing". It waits in the receive buffer at its place;
			// the ACK for the hole goes at once (RFC 5681 §4.2), with SACK
			// blocks naming what we hold (RFC 2018 §4).
			off := int(c.rcvNxt.Size(seq))
			end := seq.Add(seqnum.Size(len(payload)))
			if in, e := c.ooo.contains(seq); in {
				c.noteDuplicate(seq, seqnum.Min(end, e)) // held already (RFC 2883 §4)
			}
			if c.ooo.add(seq, end) {
				c.rcv.writeAt(off, payload)
			} else {
				c.drop(now, seg, ReasonOutOfOrder) // too many holes
			}
			if fin {
				c.peerFin, c.peerFinSet = end, true
			}
			c.ackNow, c.ackReason = true, ReasonOutOfOrder
			return
		}
		// "Once in the ESTABLISHED state, it is possible to deliver segment
		// data to user RECEIVE buffers. ... it advances RCV.NXT over the
		// data accepted, and adjusts RCV.WND as appropriate to the current
		// buffer availability." Out-of-order data the segment reaches is
		// delivered with it.
		filled := !c.ooo.empty()
		c.rcv.writeAt(0, payload)
		next := seq.Add(seqnum.Size(len(payload)))
		for !c.ooo.empty() && c.ooo.at(0).start.LessThanEq(next) {
			next = seqnum.Max(next, c.ooo.at(0).end)
			c.ooo.trimBelow(c.ooo.at(0).end)
		}
		n := int(c.rcvNxt.Size(next))
		c.rcv.commit(n)
		c.rcvNxt = next
		c.ackPend = clamp32(int(c.ackPend) + n)
		// "Send an acknowledgment of the form:
		// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. This acknowledgment should
		// be piggybacked on a segment being transmitted if possible
		// without incurring undue delay." An ACK that fills a hole goes at
		// once (RFC 5681 §4.2); others may wait for company.
		if filled {
			c.ackNow, c.ackReason = true, ReasonAck
		} else {
			c.ackData(now)
		}
	} else if seq != c.rcvNxt && fin {
		c.peerFin, c.peerFinSet = seq, true
		c.ackNow, c.ackReason = true, ReasonOutOfOrder
		return
	}
	if fin {
		c.peerFin, c.peerFinSet = seq.Add(seqnum.Size(len(payload))), true
	}

	// Eighth: check the FIN bit. It counts only once every byte before it
	// has arrived, perhaps in this segment.
	if !c.peerFinSet || c.peerFin != c.rcvNxt || c.finRcvd {
		return
	}
	// "If the FIN bit is set, signal the user "connection closing" and
	// return any pending RECEIVEs with same message, advance RCV.NXT over
	// the FIN, and send an acknowledgment for the FIN."
	c.finRcvd = true
	c.rcvNxt = c.rcvNxt.Add(1)
	switch c.state {
	case SynReceived, Established:
		c.setState(now, CloseWait)
		// The ACK may wait a moment for our own FIN to ride with it, as
		// Linux's delayed ACK lets it: the three-segment close.
		c.ackPend++
		c.ackData(now)
	case FinWait1:
		// "If our FIN has been ACKed (perhaps in this segment), then enter
		// TIME-WAIT, start the time-wait timer, turn off the other
		// timers; otherwise, enter the CLOSING state."
		c.ackNow, c.ackReason = true, ReasonAck
		if c.finAcked() {
			c.startTimeWait(now)
		} else {
			c.setState(now, Closing)
		}
	case FinWait2:
		// "Enter the TIME-WAIT state. Start the time-wait timer, turn off
		// the other timers."
		c.ackNow, c.ackReason = true, ReasonAck
		c.startTimeWait(now)
	}
}

// ackData acknowledges in-order data: at once when two full-sized segments
// are unacknowledged (RFC 5681 §4.2: "an ACK SHOULD be generated for at
// least every second full-sized segment") or delayed ACKs are off,
// otherwise within AckDelay, unless data or a window update carries it
// first (RFC 9293 §3.8.6.3).
func (c *Conn) ackData(now time.Time) {
	delay := c.cfg.ackDelay()
	if delay == 0 || c.ackPend >= 2*c.rcvMSS {
		c.ackNow, c.ackReason = true, ReasonAck
		return
	}
	if !c.timerArmed(TimerDelayedAck) {
		c.setTimer(now, TimerDelayedAck, now.Add(delay))
	}
}
