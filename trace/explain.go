package trace

import (
	"fmt"
	"strings"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/tcp"
)

// StateMeaning says in plain words what a connection in state s is doing,
// correcting the article where RFC 9293 says otherwise (TIME-WAIT is the
// side that closed first waiting out old segments; LAST-ACK waits for the
// ACK of its own FIN).
func StateMeaning(s tcp.State) string {
	switch s {
	case tcp.Closed:
		return "the connection's record, its TCB, is deleted"
	case tcp.Listen:
		return "waiting for a SYN"
	case tcp.SynSent:
		return "SYN sent, waiting for the peer's SYN"
	case tcp.SynReceived:
		return "SYN received and answered, waiting for the ACK of ours"
	case tcp.Established:
		return "open: data flows both ways"
	case tcp.FinWait1:
		return "FIN sent, waiting for its ACK"
	case tcp.FinWait2:
		return "our FIN acknowledged, waiting for the peer's FIN"
	case tcp.CloseWait:
		return "the peer has closed; waiting for our application to close"
	case tcp.Closing:
		return "FINs crossed; waiting for the ACK of ours"
	case tcp.LastAck:
		return "FIN sent after the peer's, waiting for the last ACK"
	case tcp.TimeWait:
		return "both FINs acknowledged; waiting 2MSL so a lost last ACK can be repeated and old segments die out"
	}
	return ""
}

// segmentLabel is what an arrow carries: flags, seq, ack (if ACK), len (if
// any) and the window.
func segmentLabel(s tcp.SegmentInfo) string {
	var b strings.Builder
	b.WriteString(s.Flags.String())
	fmt.Fprintf(&b, " seq=%d", s.Seq)
	if s.Flags&header.ACK != 0 {
		fmt.Fprintf(&b, " ack=%d", s.Ack)
	}
	if s.Len > 0 {
		fmt.Fprintf(&b, " len=%d", s.Len)
	}
	fmt.Fprintf(&b, " win=%d", s.Window)
	return b.String()
}

// callPhrase describes a user call; "" for calls not worth a word.
func callPhrase(call string) string {
	switch call {
	case tcp.CallOpenActive.String():
		return "connects (active OPEN)"
	case tcp.CallOpenPassive.String():
		return "listens (passive OPEN)"
	case tcp.CallClose.String():
		return "its application closes (CLOSE)"
	case tcp.CallAbort.String():
		return "its application aborts (ABORT)"
	case tcp.CallSend.String():
		return "its application writes (SEND)"
	}
	return ""
}

// sendPhrase describes a segment sent, from its reason.
func sendPhrase(r *Record, lastIn tcp.SegmentInfo) string {
	flags := r.Seg.Flags.String()
	if r.Retransmit {
		how := ""
		switch r.Reason {
		case tcp.ReasonFastRetransmit.String():
			how = " at once (fast retransmit)"
		case tcp.ReasonProbe.String():
			return fmt.Sprintf("probes the zero window with %d byte(s) it sent before", r.Seg.Len)
		}
		if r.Seg.Len > 0 && how != "" {
			return fmt.Sprintf("resends %d bytes%s", r.Seg.Len, how)
		}
		if r.Seg.Len > 0 {
			return fmt.Sprintf("resends %d bytes (%s)", r.Seg.Len, flags)
		}
		return "resends its " + flags + how
	}
	switch r.Reason {
	case tcp.ReasonOpen.String():
		return "sends SYN"
	case tcp.ReasonSynAck.String():
		return "answers with " + flags
	case tcp.ReasonHandshakeAck.String():
		return "acknowledges the SYN, completing the handshake"
	case tcp.ReasonData.String():
		s := fmt.Sprintf("sends %d bytes", r.Seg.Len)
		if r.Seg.Flags&header.FIN != 0 {
			s += " and its FIN"
		}
		return s
	case tcp.ReasonAck.String(), tcp.ReasonDelayedAck.String():
		if r.Reason == tcp.ReasonDelayedAck.String() {
			return "sends the ACK it held back (delayed ACK)"
		}
		if r.Seg.Ack == lastIn.Seq.Add(lastIn.SeqLen()) {
			switch {
			case lastIn.Flags&header.FIN != 0 && lastIn.Len > 0:
				return fmt.Sprintf("acknowledges the %d bytes and the FIN", lastIn.Len)
			case lastIn.Flags&header.FIN != 0:
				return "acknowledges the FIN"
			case lastIn.Len > 0:
				return fmt.Sprintf("acknowledges the %d bytes", lastIn.Len)
			}
		}
		if lastIn.Len > 0 && lastIn.Seq.LessThan(r.Seg.Ack) {
			return fmt.Sprintf("acknowledges everything before %d", r.Seg.Ack)
		}
		return "acknowledges"
	case tcp.ReasonOutOfOrder.String():
		return fmt.Sprintf("acknowledges at once: the data is out of order, %d is still missing (a duplicate ACK)", r.Seg.Ack)
	case tcp.ReasonProbe.String():
		if r.Seg.Len == 0 {
			return "probes the zero window: an old sequence number draws an ACK with the window"
		}
		return fmt.Sprintf("probes the zero window with %d byte(s)", r.Seg.Len)
	case tcp.ReasonKeepAlive.String():
		return "sends a keep-alive probe: an old sequence number draws an ACK"
	case tcp.ReasonFin.String():
		return "sends its FIN"
	case tcp.ReasonResetNoConn.String():
		return "has no such connection: answers " + flags
	case tcp.ReasonResetBadAck.String():
		return "answers " + flags
	case tcp.ReasonAbort.String():
		return "sends " + flags + " to tell the peer"
	case tcp.ReasonTimeWaitReack.String():
		return "acknowledges the FIN again and restarts the 2MSL wait"
	case tcp.ReasonChallengeAck.String():
		return "sends a challenge ACK (RFC 5961)"
	case tcp.ReasonWindowUpdate.String():
		return "announces a larger window"
	case tcp.ReasonOutOfWindow.String():
		if r.Seg.Window == 0 {
			return "acknowledges to say where it stands: the window is still 0"
		}
		return "acknowledges to say where it stands"
	case tcp.ReasonAckTooNew.String():
		return "acknowledges to say where it stands"
	case tcp.ReasonDupSyn.String():
		return "answers the repeated SYN with " + flags
	case "":
		return "sends " + flags
	}
	return "sends " + flags + " (" + r.Reason + ")"
}

// dropPhrase describes an arriving segment discarded, from its reason.
func dropPhrase(r *Record) string {
	switch r.Reason {
	case tcp.ReasonTimeWaitReack.String():
		return "gets the FIN again (its last ACK was lost)"
	case tcp.ReasonResetNoConn.String():
		return "has no connection for it and drops it"
	case tcp.ReasonDupSyn.String():
		return "gets the SYN again (its SYN,ACK was lost)"
	case tcp.ReasonRstIgnored.String():
		return "ignores the RST"
	case tcp.ReasonDupAck.String():
		return "counts a duplicate ACK"
	case tcp.ReasonOutOfWindow.String():
		if r.Seg.Len == 0 {
			return "finds it outside the window (a probe): answers with an ACK"
		}
		return "finds it outside the window: drops it and answers with an ACK"
	case tcp.ReasonOutOfOrder.String():
		return "has no room to keep it out of order: drops it"
	case tcp.ReasonPAWS.String():
		return "finds an old timestamp (PAWS, RFC 7323 §5): drops it"
	case tcp.ReasonResetBadAck.String():
		return "finds it acknowledges something never sent"
	}
	return "drops it (" + r.Reason + ")"
}

// timerSetPhrase describes a timer being armed, for the timers whose
// arming a reader of the ladder wants to see; "" for the others.
func timerSetPhrase(r *Record) string {
	d := r.Deadline - r.T
	switch r.Timer {
	case tcp.TimerDelayedAck.String():
		return fmt.Sprintf("holds its ACK back for up to %v (delayed ACK)", d)
	case tcp.TimerPersist.String():
		return fmt.Sprintf("starts its persist timer (%v)", d)
	}
	return ""
}

// timerPhrase describes a timer's expiry.
func timerPhrase(timer string) string {
	return "the " + timer + " timer expires"
}

// linkPhrase describes what the network did to a packet.
func linkPhrase(r *Record) string {
	switch r.Kind {
	case KindLost:
		return "lost in the network"
	case KindFiltered:
		if r.Text != "" {
			return r.Text
		}
		return "dropped on the way"
	case KindDuplicated:
		return "the network duplicates it"
	case KindCorrupted:
		return "a byte is damaged on the way"
	case KindReordered:
		return "held back " + r.Text + " by the network (reordering)"
	case KindDelayed:
		if r.Text != "" {
			return r.Text
		}
		return "held back on the way"
	case KindQueueFull:
		return "the link's queue is full: dropped"
	case KindNoRoute:
		return "no route to " + r.Conn.Remote.Addr().String() + ": dropped"
	case KindUnreachable:
		return "no host has address " + r.Conn.Local.Addr().String() + ": it vanishes"
	}
	return string(r.Kind)
}

// endPhrase says how an abnormal end came about, for a change to CLOSED
// caused by an RST or by giving up on retransmissions; "" otherwise.
func endPhrase(r *Record) string {
	if r.To != tcp.Closed {
		return ""
	}
	switch {
	case strings.HasPrefix(r.Cause, "rcv ") && strings.Contains(r.Cause, "RST"):
		if r.From == tcp.SynSent || r.From == tcp.SynReceived {
			return "connection refused"
		}
		if r.From == tcp.TimeWait || r.From == tcp.Closing || r.From == tcp.LastAck {
			return "closed by the RST"
		}
		return "connection reset"
	case r.Cause == "timeout "+tcp.TimerRetransmit.String():
		return "gives up (connection timed out)"
	case r.Cause == "timeout "+tcp.TimerUser.String():
		return "gives up (user timeout)"
	}
	return ""
}
