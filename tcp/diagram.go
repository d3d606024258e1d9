package tcp

import "github.com/tcpstate/tcpstate/header"

// Trigger is what drives an edge of the state diagram: a user call, a kind
// of arriving segment, or a timer.
type Trigger uint8

// The triggers.
const (
	TrigPassiveOpen Trigger = iota
	TrigActiveOpen
	TrigSend
	TrigClose
	TrigAbort
	TrigSYN    // rcv SYN
	TrigSYNACK // rcv SYN,ACK
	TrigACK    // rcv ACK (of our SYN or FIN)
	TrigFIN    // rcv FIN
	TrigFINACK // rcv FIN together with the ACK of our FIN
	TrigRST    // rcv RST
	TrigRetransmitTimeout
	TrigTimeWaitTimeout
	TrigUserTimeout
	numTriggers
)

var triggerNames = [numTriggers]string{
	"passive OPEN", "active OPEN", "SEND", "CLOSE", "ABORT",
	"rcv SYN", "rcv SYN,ACK", "rcv ACK", "rcv FIN", "rcv FIN,ACK", "rcv RST",
	"retransmission timeout", "2MSL timeout", "user timeout",
}

func (t Trigger) String() string {
	if t < numTriggers {
		return triggerNames[t]
	}
	return "?"
}

// MarshalText spells the trigger as String does.
func (t Trigger) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Edge is one transition of the connection state diagram.
type Edge struct {
	From, To State
	Trigger  Trigger
	// Label is the edge's text as RFC 9293 Figure 5 writes it: the event,
	// and after a slash the action ("rcv SYN / snd SYN,ACK").
	Label string
}

// TriggerOf classifies a state-change event by what drove it.
func TriggerOf(e *Event) Trigger {
	switch e.Cause.Kind {
	case CauseCall:
		switch e.Cause.Call {
		case CallOpenPassive:
			return TrigPassiveOpen
		case CallOpenActive:
			return TrigActiveOpen
		case CallSend:
			return TrigSend
		case CallAbort:
			return TrigAbort
		}
		return TrigClose
	case CauseTimer:
		switch e.Cause.Timer {
		case TimerTimeWait:
			return TrigTimeWaitTimeout
		case TimerUser:
			return TrigUserTimeout
		}
		return TrigRetransmitTimeout
	}
	f := e.Cause.Segment.Flags
	switch {
	case f&header.RST != 0:
		return TrigRST
	case e.From == SynSent && f&header.SYN != 0:
		if f&header.ACK != 0 {
			return TrigSYNACK
		}
		return TrigSYN
	case (e.From == Listen || e.To == Listen) && f&header.SYN != 0:
		return TrigSYN
	case e.From == FinWait1 && e.To == TimeWait:
		return TrigFINACK
	case e.To == CloseWait || e.To == Closing || (e.From == FinWait2 && e.To == TimeWait):
		return TrigFIN
	}
	return TrigACK
}

// Edges is the connection state diagram: every transition of RFC 9293
// Figure 5, and the ones its §3.10 text adds (resets, aborts, timeouts,
// FIN-WAIT-1 straight to TIME-WAIT on a FIN that acknowledges ours).
var Edges = []Edge{
	{Closed, Listen, TrigPassiveOpen, "passive OPEN / create TCB"},
	{Closed, SynSent, TrigActiveOpen, "active OPEN / snd SYN"},

	{Listen, SynReceived, TrigSYN, "rcv SYN / snd SYN,ACK"},
	{Listen, SynReceived, TrigACK, "rcv ACK returning a SYN cookie (RFC 4987)"},
	{Listen, SynSent, TrigSend, "SEND / snd SYN"},
	{Listen, Closed, TrigClose, "CLOSE / delete TCB"},
	{Listen, Closed, TrigAbort, "ABORT / delete TCB"},

	{SynSent, SynReceived, TrigSYN, "rcv SYN / snd SYN,ACK (simultaneous open)"},
	{SynSent, Established, TrigSYNACK, "rcv SYN,ACK / snd ACK"},
	{SynSent, Closed, TrigClose, "CLOSE / delete TCB"},
	{SynSent, Closed, TrigAbort, "ABORT / delete TCB"},
	{SynSent, Closed, TrigRST, "rcv RST,ACK / connection refused"},
	{SynSent, Closed, TrigRetransmitTimeout, "SYN retries exhausted / connection timed out"},

	{SynReceived, Established, TrigACK, "rcv ACK of SYN"},
	{SynReceived, FinWait1, TrigClose, "CLOSE / snd FIN"},
	{SynReceived, Listen, TrigRST, "rcv RST (passive open) / forget the SYN"},
	{SynReceived, Listen, TrigSYN, "rcv SYN in window (passive open)"},
	{SynReceived, Closed, TrigRST, "rcv RST (active open) / connection refused"},
	{SynReceived, Closed, TrigAbort, "ABORT / snd RST"},
	{SynReceived, Closed, TrigRetransmitTimeout, "SYN,ACK retries exhausted / give up"},

	{Established, FinWait1, TrigClose, "CLOSE / snd FIN"},
	{Established, CloseWait, TrigFIN, "rcv FIN / snd ACK"},
	{Established, Closed, TrigRST, "rcv RST / connection reset"},
	{Established, Closed, TrigAbort, "ABORT / snd RST"},
	{Established, Closed, TrigRetransmitTimeout, "data retries exhausted / connection timed out"},
	{Established, Closed, TrigUserTimeout, "user timeout / connection aborted"},

	{FinWait1, FinWait2, TrigACK, "rcv ACK of FIN"},
	{FinWait1, Closing, TrigFIN, "rcv FIN / snd ACK"},
	{FinWait1, TimeWait, TrigFINACK, "rcv FIN,ACK of FIN / snd ACK"},
	{FinWait1, Closed, TrigRST, "rcv RST / connection reset"},
	{FinWait1, Closed, TrigAbort, "ABORT / snd RST"},
	{FinWait1, Closed, TrigRetransmitTimeout, "FIN retries exhausted / connection timed out"},

	{FinWait2, TimeWait, TrigFIN, "rcv FIN / snd ACK"},
	{FinWait2, Closed, TrigRST, "rcv RST / connection reset"},
	{FinWait2, Closed, TrigAbort, "ABORT / snd RST"},

	{CloseWait, LastAck, TrigClose, "CLOSE / snd FIN"},
	{CloseWait, Closed, TrigRST, "rcv RST / connection reset"},
	{CloseWait, Closed, TrigAbort, "ABORT / snd RST"},
	{CloseWait, Closed, TrigRetransmitTimeout, "data retries exhausted / connection timed out"},

	{Closing, TimeWait, TrigACK, "rcv ACK of FIN"},
	{Closing, Closed, TrigRST, "rcv RST"},
	{Closing, Closed, TrigAbort, "ABORT / delete TCB"},
	{Closing, Closed, TrigRetransmitTimeout, "FIN retries exhausted / connection timed out"},

	{LastAck, Closed, TrigACK, "rcv ACK of FIN"},
	{LastAck, Closed, TrigRST, "rcv RST"},
	{LastAck, Closed, TrigAbort, "ABORT / delete TCB"},
	{LastAck, Closed, TrigRetransmitTimeout, "FIN retries exhausted / connection timed out"},

	{TimeWait, Closed, TrigTimeWaitTimeout, "timeout=2MSL / delete TCB"},
	{TimeWait, Closed, TrigRST, "rcv RST (RFC 9293; RFC 1337 ignores it)"},
	{TimeWait, Closed, TrigAbort, "ABORT / delete TCB"},
}
