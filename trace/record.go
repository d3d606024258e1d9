// Package trace is tcpstate's event model for output, and its renderers.
//
// A Record is one thing that happened during a run: a connection changed
// state, sent or received a segment, armed or fired a timer, or the network
// between two hosts lost, duplicated, corrupted or held back a packet.
// Records are plain values built from tcp.Event (FromEvent) and from the
// simulator's link events, and they travel through a Sink: a Log keeps
// them, a JSONWriter writes one JSON object per line.
//
// The renderers read a slice of Records: Ladder draws the two-column
// ladder diagram of RFC 9293's examples, with each side's state, the
// segments between them, lost packets ending in an X, timer expiries and a
// plain-words explanation of every step.
package trace

import (
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Kind says what a Record reports. The first eight are the kinds of
// tcp.Event and spell the same; the rest come from the network and the
// hosts around the connections.
type Kind string

// The kinds of record a connection reports (tcp.EventType's spellings).
const (
	KindState        Kind = "state"         // From -> To, because of Cause
	KindSegmentIn    Kind = "segment-in"    // a segment arrived
	KindSegmentOut   Kind = "segment-out"   // a segment was sent, for Reason
	KindDrop         Kind = "drop"          // an arriving segment was discarded, for Reason
	KindTimerSet     Kind = "timer-set"     // Timer armed for Deadline
	KindTimerFired   Kind = "timer-fired"   // Timer expired
	KindTimerStopped Kind = "timer-stopped" // Timer cancelled
	KindCall         Kind = "call"          // the user called Call
)

// The kinds of record the hosts and the network around connections report.
const (
	// KindHost introduces a host: its name (Host) and address (Addr).
	KindHost Kind = "host"
	// KindListen: the host listens on Conn.Local's port.
	KindListen Kind = "listen"
	// KindInject: a crafted segment was put on the wire (Text says why).
	KindInject Kind = "inject"
	// KindLost: the link lost the packet.
	KindLost Kind = "lost"
	// KindDuplicated: the link delivers the packet twice.
	KindDuplicated Kind = "duplicated"
	// KindCorrupted: the link damaged a byte; the receiver's checksum
	// check will catch it.
	KindCorrupted Kind = "corrupted"
	// KindReordered: the link held the packet back (Text says how long),
	// so packets sent after it may arrive first.
	KindReordered Kind = "reordered"
	// KindDelayed: a scripted filter held the packet back.
	KindDelayed Kind = "delayed"
	// KindFiltered: a scripted filter dropped the packet.
	KindFiltered Kind = "filtered"
	// KindQueueFull: the link's queue was full; the packet was dropped.
	KindQueueFull Kind = "queue-full"
	// KindNoRoute: the sending host has no link towards the destination.
	KindNoRoute Kind = "no-route"
	// KindUnreachable: the packet reached a host that does not have its
	// destination address, and vanished.
	KindUnreachable Kind = "unreachable"
	// KindBadPacket: the receiving host could not parse the packet or its
	// checksum failed (Text has the error); it was dropped and counted.
	KindBadPacket Kind = "bad-packet"
	// KindNote: narration added by a scenario (Text).
	KindNote Kind = "note"
)

// Record is one event of a run, flattened for output. Which fields are
// meaningful depends on Kind; JSON output leaves out those that are not.
type Record struct {
	// T is the virtual time of the event, counted from the start of the
	// run.
	T time.Duration
	// Step numbers the happening the event belongs to: every record a
	// single packet delivery, user call or timer expiry caused shares its
	// Step. Renderers group by it.
	Step uint64
	// Run names the run (a demo scenario), when several share an output.
	Run string
	// Host is the name of the host, or side, the event happened at; for
	// link events, the sending host.
	Host string
	// Addr is the host's address (KindHost).
	Addr netip.Addr
	// Conn is the connection's tuple as Host sees it; for link events, the
	// packet's source and destination.
	Conn tcp.Tuple
	// Kind says what happened.
	Kind Kind

	// HasState is set when State is known: for every event of a
	// connection.
	HasState bool
	// State is the connection's state after the event.
	State tcp.State
	// From and To are the states of a KindState change; Cause says why,
	// as tcp.Cause writes it ("rcv SYN,ACK", "CLOSE", "timeout 2MSL").
	From, To tcp.State
	Cause    string
	// Call is the user call of a KindCall ("active OPEN", "CLOSE", ...).
	Call string

	// Pkt identifies the packet a segment travelled in, so a send, its
	// fate on the link and its arrival can be matched up. Zero when
	// unknown.
	Pkt uint64
	// HasSeg is set when Seg describes a segment.
	HasSeg bool
	Seg    tcp.SegmentInfo
	// Opts lists the segment's TCP options as FormatOptions writes them
	// ("mss=1460 ws=7 sackOK ts=1/0", "sack=2001-3001"); empty when it
	// carries none or they are not known.
	Opts string
	// Reason says why a segment was sent or dropped, in tcp.Reason's
	// words.
	Reason string
	// Retransmit marks a retransmitted segment.
	Retransmit bool

	// Timer names the timer of a timer event; Deadline is when a
	// KindTimerSet timer fires, counted from the start of the run.
	Timer    string
	Deadline time.Duration

	// Link names the link direction of a link event ("client->server").
	Link string
	// Text is free text: a note's narration, a bad packet's error, how
	// long a packet was held back.
	Text string
}

// FromEvent converts a connection's event into a Record. start is the
// start of the run, from which times are counted; host names the side.
// Pkt, Step and Run are left for the caller.
func FromEvent(e *tcp.Event, start time.Time, host string) Record {
	r := Record{
		T:        e.Time.Sub(start),
		Host:     host,
		Conn:     e.Conn,
		Kind:     Kind(e.Type.String()),
		HasState: true,
		State:    e.State,
	}
	switch e.Type {
	case tcp.EventState:
		r.From, r.To, r.Cause = e.From, e.To, e.Cause.String()
	case tcp.EventSegmentIn:
		r.HasSeg, r.Seg = true, e.Segment
	case tcp.EventSegmentOut, tcp.EventDrop:
		r.HasSeg, r.Seg = true, e.Segment
		r.Reason = e.Reason.String()
		r.Retransmit = e.Retransmit
	case tcp.EventTimerSet:
		r.Timer = e.Timer.String()
		r.Deadline = e.Deadline.Sub(start)
	case tcp.EventTimerFired, tcp.EventTimerStopped:
		r.Timer = e.Timer.String()
	case tcp.EventCall:
		r.Call = e.Call.String()
	}
	return r
}

// Sink receives records as they happen. The *Record is only valid during
// the call.
type Sink interface {
	Emit(r *Record)
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(r *Record)

// Emit calls f(r).
func (f SinkFunc) Emit(r *Record) { f(r) }

// Log is a Sink that keeps a copy of every record, in order.
type Log struct {
	Records []Record
}

// Emit appends a copy of r.
func (l *Log) Emit(r *Record) { l.Records = append(l.Records, *r) }

// Tee returns a Sink that hands every record to each of sinks in turn;
// nil sinks are skipped.
func Tee(sinks ...Sink) Sink {
	var live []Sink
	for _, s := range sinks {
		if s != nil {
			live = append(live, s)
		}
	}
	return SinkFunc(func(r *Record) {
		for _, s := range live {
			s.Emit(r)
		}
	})
}
