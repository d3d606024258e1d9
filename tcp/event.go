package tcp

import (
	"fmt"
	"time"
)

// Observer receives a connection's events as they happen. The *Event is
// only valid during the call; copy it to keep it.
//
// A Conn with no Observer builds no events: every emit site is guarded by a
// nil check, so tracing that nobody asked for costs a branch.
type Observer interface {
	Observe(e *Event)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(e *Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e *Event) { f(e) }

// EventType says what happened.
type EventType uint8

// The kinds of event a Conn reports.
const (
	// EventState: the connection moved From one state To another, because
	// of Cause.
	EventState EventType = iota
	// EventSegmentIn: a segment arrived (Segment), before processing.
	EventSegmentIn
	// EventSegmentOut: the connection sent a segment (Segment), for
	// Reason; Retransmit marks a retransmission.
	EventSegmentOut
	// EventDrop: an arriving segment was discarded, for Reason.
	EventDrop
	// EventTimerSet: Timer was armed to fire at Deadline.
	EventTimerSet
	// EventTimerFired: Timer expired.
	EventTimerFired
	// EventTimerStopped: Timer was cancelled before it fired.
	EventTimerStopped
	// EventCall: the user called Call (OPEN, SEND, CLOSE, ...).
	EventCall
)

// numEventTypes counts the event types; EventMask has a bit for each.
const numEventTypes = int(EventCall) + 1

// EventMask is a set of event types, one bit per EventType.
type EventMask uint16

// AllEvents selects every type of event.
const AllEvents EventMask = 1<<numEventTypes - 1

// MaskOf returns the set of the given event types.
func MaskOf(types ...EventType) EventMask {
	var m EventMask
	for _, t := range types {
		m |= 1 << t
	}
	return m
}

// Has reports whether t is in the set.
func (m EventMask) Has(t EventType) bool { return m&(1<<t) != 0 }

var eventTypeNames = [...]string{"state", "segment-in", "segment-out", "drop", "timer-set", "timer-fired", "timer-stopped", "call"}

func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// MarshalText spells the type as String does.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Event is one thing that happened to a connection. Which fields are
// meaningful depends on Type.
type Event struct {
	Time  time.Time
	Conn  Tuple
	Type  EventType
	State State // the state after the event

	From, To State // EventState
	Cause    Cause // EventState

	Segment    SegmentInfo // EventSegmentIn, EventSegmentOut, EventDrop
	Retransmit bool        // EventSegmentOut
	Reason     Reason      // EventSegmentOut, EventDrop

	Timer    Timer     // EventTimer*
	Deadline time.Time // EventTimerSet

	Call Call // EventCall
}

// CauseKind says whether a state change came from a segment, a user call or
// a timer.
type CauseKind uint8

// The kinds of cause.
const (
	CauseSegment CauseKind = iota
	CauseCall
	CauseTimer
)

// Cause is why a state changed: which segment arrived, which call the user
// made, or which timer expired.
type Cause struct {
	Kind    CauseKind
	Segment SegmentInfo // CauseSegment
	Call    Call        // CauseCall
	Timer   Timer       // CauseTimer
}

// String describes the cause in the diagram's words: "rcv SYN,ACK",
// "CLOSE", "timeout 2MSL".
func (c Cause) String() string {
	switch c.Kind {
	case CauseSegment:
		return "rcv " + c.Segment.Flags.String()
	case CauseCall:
		return c.Call.String()
	case CauseTimer:
		return "timeout " + c.Timer.String()
	}
	return "?"
}

// Call is a user call of RFC 9293 §3.9.1.
type Call uint8

// The user calls.
const (
	CallOpenPassive Call = iota
	CallOpenActive
	CallSend
	CallReceive
	CallClose
	CallAbort
)

var callNames = [...]string{"passive OPEN", "active OPEN", "SEND", "RECEIVE", "CLOSE", "ABORT"}

func (c Call) String() string {
	if int(c) < len(callNames) {
		return callNames[c]
	}
	return fmt.Sprintf("Call(%d)", uint8(c))
}

// MarshalText spells the call as String does.
func (c Call) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Timer names one of a connection's timers (RFC 9293 §3.8, §3.10.8).
type Timer uint8

// The timers.
const (
	// TimerRetransmit resends SYN, SYN,ACK, data or FIN that has not been
	// acknowledged (RFC 9293 §3.8.1).
	TimerRetransmit Timer = iota
	// TimerTimeWait is TIME-WAIT's 2MSL wait (RFC 9293 §3.3.2, §3.10.8).
	TimerTimeWait
	// TimerUser is the user timeout (RFC 9293 §3.10.8, RFC 5482).
	TimerUser
	// TimerDelayedAck sends an ACK that waited for data to ride on
	// (RFC 9293 §3.8.6.3).
	TimerDelayedAck
	// TimerPersist probes a peer's zero window (RFC 9293 §3.8.6.1).
	TimerPersist
	// TimerKeepAlive probes an idle connection (RFC 1122 §4.2.3.6).
	TimerKeepAlive
	// TimerLossProbe sends a tail loss probe when no ACK came for two
	// smoothed round trips (RFC 8985 §7.2, §7.3).
	TimerLossProbe
	// TimerReorder marks segments lost once the RACK reordering window
	// has passed since they were sent (RFC 8985 §6.3).
	TimerReorder
	numTimers

	// The retransmission, loss-probe and reordering timers are never
	// armed together (RFC 8985 §7.2 arms the PTO in place of the RTO, §6.3
	// the reordering timer likewise, as Linux's icsk_pending does): they
	// share one deadline, and the connection notes which of them it is.
	numTimerSlots = TimerKeepAlive + 1
)

var timerNames = [...]string{"retransmission", "2MSL", "user timeout", "delayed ACK", "persist", "keepalive",
	"tail loss probe", "RACK reordering"}

func (t Timer) String() string {
	if int(t) < len(timerNames) {
		return timerNames[t]
	}
	return fmt.Sprintf("Timer(%d)", uint8(t))
}

// MarshalText spells the timer as String does.
func (t Timer) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Reason explains why a segment was sent or dropped, in words a person
// reading a ladder diagram understands.
type Reason uint8

// The reasons.
const (
	ReasonNone Reason = iota

	// Why segments are sent.
	ReasonOpen           // SYN of an active open
	ReasonSynAck         // SYN,ACK answering a SYN
	ReasonHandshakeAck   // ACK completing the three-way handshake
	ReasonData           // new data
	ReasonAck            // acknowledging data or a FIN
	ReasonFin            // our FIN
	ReasonRetransmit     // the retransmission timer expired
	ReasonResetNoConn    // RST for a segment that belongs to no connection
	ReasonResetBadAck    // RST for an ACK of something never sent
	ReasonAbort          // RST from ABORT
	ReasonChallengeAck   // challenge ACK (RFC 5961)
	ReasonOutOfWindow    // segment outside the receive window (ack and drop)
	ReasonAckTooNew      // ACK of data not yet sent (ack and drop)
	ReasonOutOfOrder     // data beyond RCV.NXT, not yet deliverable
	ReasonDupSyn         // retransmitted SYN seen in SYN-RECEIVED
	ReasonWindowUpdate   // the receive window opened
	ReasonNoAck          // ACK bit off in a synchronized state
	ReasonBadState       // segment not expected in this state
	ReasonRstIgnored     // RST not acceptable in this state
	ReasonTextAfterFin   // data after the peer's FIN
	ReasonTimeWaitReack  // a FIN retransmitted into TIME-WAIT, re-acknowledged
	ReasonFastRetransmit // duplicate ACKs, SACK or RACK say a segment was lost (RFC 5681, RFC 6675, RFC 8985)
	ReasonProbe          // a zero-window probe (RFC 9293 §3.8.6.1)
	ReasonKeepAlive      // a keep-alive probe (RFC 1122 §4.2.3.6)
	ReasonDelayedAck     // the delayed-ACK timer expired
	ReasonPAWS           // an old timestamp: protection against wrapped sequences (RFC 7323 §5)
	ReasonDupAck         // a duplicate ACK, counted toward fast retransmit
	ReasonLossProbe      // a tail loss probe (RFC 8985 §7.3)
	ReasonDuplicate      // acknowledging data that arrived twice, with a D-SACK block (RFC 2883)
	numReasons
)

var reasonText = [numReasons]string{
	"",
	"opening: SYN",
	"answering the SYN",
	"completing the handshake",
	"data",
	"acknowledging",
	"closing: FIN",
	"retransmission timeout",
	"no such connection",
	"acknowledges something never sent",
	"aborted by the user",
	"challenge ACK (RFC 5961)",
	"outside the receive window",
	"acknowledges data not yet sent",
	"out of order",
	"duplicate SYN",
	"window update",
	"no ACK bit",
	"not expected in this state",
	"RST not acceptable",
	"data after FIN",
	"FIN retransmitted into TIME-WAIT",
	"fast retransmit",
	"zero-window probe",
	"keep-alive probe",
	"delayed ACK",
	"old timestamp (PAWS)",
	"duplicate ACK",
	"tail loss probe",
	"duplicate data (D-SACK)",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonText[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// MarshalText spells the reason as String does.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
