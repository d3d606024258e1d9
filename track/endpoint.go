package track

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// maxPending bounds an endpoint's pending deliveries; past it the oldest
// is taken as delivered.
const maxPending = 8

// item is a packet from the peer that would change an endpoint's state,
// as far as the state model needs it.
type item struct {
	t        int64 // Unix nanoseconds
	seq, ack seqnum.Value
	pkt      int32 // index of the packet in its connection (for the ladder)
	flags    header.TCPFlags
	// unanswered is set when the item's segment (a SYN,ACK or a FIN) was
	// retransmitted while its receiver sent nothing at all since the
	// first transmission. Such a segment demands an immediate ACK (RFC
	// 9293 §3.10.7.3 for a SYN,ACK in SYN-SENT, §3.10.7.4 "eighth, check
	// the FIN bit" for a FIN), so a live TCP that got it would have
	// answered: the item is taken as not delivered unless a later packet
	// of the receiver proves it.
	unanswered bool
}

// end is the sequence number just past what the item occupies: seq+1 for
// a SYN, seq+len+1 for a FIN (set by the caller in seq for FINs: the FIN's
// own number).
func (it *item) occupies() bool { return it.flags&(header.SYN|header.FIN) != 0 }

// transition is one state change of an endpoint, for the ladder and the
// diagram.
type transition struct {
	from, to tcp.State
	cause    causeID
	t        time.Time
	pkt      int  // the packet that caused it (-1: a timer)
	send     bool // caused by the endpoint's own send (else a receipt)
	at       int  // the packet being processed when it was committed (-1: at the end)
}

// endpoint is what the tracker infers of one side of a connection, as
// the state model works on it: a Conn holds it compactly (epStore) and
// loads it to reason on (Conn.loadEp). Its yes/no facts are bits of one
// byte (epFlag), and its pending deliveries are held inline while there
// is one (most of the time an endpoint has none or one), in a slice past
// that.
type endpoint struct {
	one     [1]item // the pending item, when npend is 1
	more    *[]item // the pending items, when there are more than one (npend 0)
	twStart int64   // when TIME-WAIT began (or was restarted), Unix nanoseconds
	iss     seqnum.Value
	finSeq  seqnum.Value // the FIN's own sequence number
	st      tcp.State    // proven state: only proven deliveries applied
	initial tcp.State    // state before the first transition
	flags   epFlag
	npend   uint8 // items in one: 0 or 1
}

// epFlag is one of an endpoint's yes/no facts.
type epFlag uint8

const (
	epSentSyn epFlag = 1 << iota
	epSynAcked
	epSentFin
	epFinAcked
	epRcvSyn
	epRcvFin
	epSentRst
	// epQuiet is set when the endpoint sent a SYN,ACK or a FIN for the
	// first time and cleared by any packet from its peer: while it holds,
	// the peer has sent nothing since.
	epQuiet
)

// is reports whether fact f holds for e.
func (e *endpoint) is(f epFlag) bool { return e.flags&f != 0 }

// mark sets fact f of e to v.
func (e *endpoint) mark(f epFlag, v bool) {
	if v {
		e.flags |= f
	} else {
		e.flags &^= f
	}
}

// pending returns e's pending items, in order; changing one changes it in
// e.
func (e *endpoint) pending() []item {
	if e.more != nil {
		return *e.more
	}
	return e.one[:e.npend]
}

// setPending makes items (which may share memory with pending()) e's
// pending items. It copies them, so that an endpoint loaded on the stack
// (see Conn.loadEp) stays there.
func (e *endpoint) setPending(items []item) {
	switch len(items) {
	case 0:
		e.more, e.npend = nil, 0
	case 1:
		e.one[0] = items[0]
		e.more, e.npend = nil, 1
	default:
		if e.more == nil {
			m := append([]item(nil), items...)
			e.more = &m
		} else {
			*e.more = append((*e.more)[:0], items...)
		}
		e.npend = 0
	}
}

// push appends it to e's pending items.
func (e *endpoint) push(it item) {
	if e.more == nil && e.npend == 0 {
		e.one[0], e.npend = it, 1
		return
	}
	if e.more == nil {
		m := make([]item, 1, 2)
		m[0] = e.one[0]
		e.more, e.npend = &m, 0
	}
	*e.more = append(*e.more, it)
}

// recorder commits transitions of one side of a connection (see
// Tracker.recorder); the zero recorder, for a belief computation, commits
// nothing. It is a value, not a closure, so that making one allocates
// nothing.
type recorder struct {
	t *Tracker
	c *Conn
	d int
}

func (e *endpoint) set(to tcp.State, cause causeID, t int64, pkt int, send bool, rec recorder) {
	if e.st == to {
		return
	}
	if rec.t != nil {
		rec.record(transition{from: e.st, to: to, cause: cause, t: fromNanos(t), pkt: pkt, send: send})
	}
	e.st = to
	if to == tcp.TimeWait {
		e.twStart = t
	}
}

// causeID names the cause of a transition: a receipt, by its flags
// masked by causeFlags (see causeOf), or one of the named causes after
// those. It is a small number, so that the tracker counts transitions in
// an array (Tracker.counts) and a transition carries no string.
type causeID uint8

// The named causes, spelled as tcp.Cause does (see causeNames).
const (
	causeTimeout    causeID = causeID(causeFlags) + 1 + iota // TIME-WAIT's timer ran out
	causeAbort                                               // the endpoint sent an RST
	causeActiveOpen                                          // the endpoint sent a SYN
	causeClose                                               // the endpoint sent a FIN
	numCauses
)

// causeOf is a receipt's cause, which causeNames spells as tcp.Cause does
// ("rcv FIN,ACK"), with only the flags the state machine reads.
func causeOf(f header.TCPFlags) causeID { return causeID(f & causeFlags) }

// causeFlags are the flags a receipt's cause names.
const causeFlags = header.SYN | header.FIN | header.RST | header.ACK

// causeNames holds the names of the causes, made once so that naming a
// cause allocates nothing and looks nothing up.
var causeNames = func() (a [numCauses]string) {
	for f := range causeFlags + 1 {
		a[f] = "rcv " + f.String()
	}
	a[causeTimeout] = "timeout 2MSL"
	a[causeAbort] = "ABORT"
	a[causeActiveOpen] = "active OPEN"
	a[causeClose] = "CLOSE"
	return a
}()

// String is the cause's name.
func (c causeID) String() string { return causeNames[c] }

// receive applies the arrival of it at e (RFC 9293 §3.10.7).
func (e *endpoint) receive(it item, rec recorder) {
	f := it.flags
	cause := causeOf(f)
	if f.Has(header.RST) {
		// §3.10.7.2: a listener ignores an RST; §3.10.7.3: in SYN-SENT the
		// RST must acknowledge our SYN.
		switch e.st {
		case tcp.Listen, tcp.Closed:
			return
		case tcp.SynSent:
			if !f.Has(header.ACK) || it.ack != e.iss.Add(1) {
				return
			}
		}
		e.set(tcp.Closed, cause, it.t, int(it.pkt), false, rec)
		return
	}
	if f.Has(header.SYN) {
		e.mark(epRcvSyn, true)
		acksSyn := f.Has(header.ACK) && e.is(epSentSyn) && it.ack.GreaterThanEq(e.iss.Add(1))
		switch e.st {
		case tcp.Listen:
			if !f.Has(header.ACK) {
				e.set(tcp.SynReceived, cause, it.t, int(it.pkt), false, rec)
			}
		case tcp.SynSent:
			if acksSyn {
				e.mark(epSynAcked, true)
				e.set(tcp.Established, cause, it.t, int(it.pkt), false, rec)
			} else if !f.Has(header.ACK) {
				e.set(tcp.SynReceived, cause, it.t, int(it.pkt), false, rec) // simultaneous open
			}
		case tcp.SynReceived:
			if acksSyn {
				e.mark(epSynAcked, true)
				e.set(tcp.Established, cause, it.t, int(it.pkt), false, rec)
			}
		}
		return
	}
	if f.Has(header.ACK) {
		if e.is(epSentSyn) && !e.is(epSynAcked) && it.ack.GreaterThanEq(e.iss.Add(1)) {
			e.mark(epSynAcked, true)
			if e.st == tcp.SynReceived {
				e.set(tcp.Established, cause, it.t, int(it.pkt), false, rec)
			}
		}
		if e.is(epSentFin) && !e.is(epFinAcked) && it.ack.GreaterThanEq(e.finSeq.Add(1)) {
			e.mark(epFinAcked, true)
			switch e.st {
			case tcp.FinWait1:
				e.set(tcp.FinWait2, cause, it.t, int(it.pkt), false, rec)
			case tcp.Closing:
				e.set(tcp.TimeWait, cause, it.t, int(it.pkt), false, rec)
			case tcp.LastAck:
				e.set(tcp.Closed, cause, it.t, int(it.pkt), false, rec)
			}
		}
	}
	if f.Has(header.FIN) {
		e.mark(epRcvFin, true)
		switch e.st {
		case tcp.Established, tcp.SynReceived:
			e.set(tcp.CloseWait, cause, it.t, int(it.pkt), false, rec)
		case tcp.FinWait1:
			if e.is(epFinAcked) {
				e.set(tcp.TimeWait, cause, it.t, int(it.pkt), false, rec)
			} else {
				e.set(tcp.Closing, cause, it.t, int(it.pkt), false, rec)
			}
		case tcp.FinWait2:
			e.set(tcp.TimeWait, cause, it.t, int(it.pkt), false, rec)
		case tcp.TimeWait:
			e.twStart = it.t // §3.10.7.4: restart the 2MSL timeout
		}
	}
}

// relevant reports whether a packet from the peer with these values would
// change e's state, so that its delivery must be tracked.
func (e *endpoint) relevant(f header.TCPFlags, ack seqnum.Value) bool {
	if f&(header.SYN|header.FIN|header.RST) != 0 {
		return true
	}
	if !f.Has(header.ACK) {
		return false
	}
	return e.is(epSentSyn) && !e.is(epSynAcked) && ack.GreaterThanEq(e.iss.Add(1)) ||
		e.is(epSentFin) && !e.is(epFinAcked) && ack.GreaterThanEq(e.finSeq.Add(1))
}

// proves reports whether e sending a packet with these values shows that
// it had received pending item it.
func (e *endpoint) proves(it *item, f header.TCPFlags, ack seqnum.Value) bool {
	if !f.Has(header.ACK) {
		return false
	}
	switch {
	case it.flags.Has(header.SYN):
		return ack.GreaterThanEq(it.seq.Add(1))
	case it.flags.Has(header.FIN):
		return ack.GreaterThanEq(it.seq.Add(1))
	}
	return false
}

// deliver commits pending items 0..k in order.
func (e *endpoint) deliver(k int, rec recorder) {
	items := e.pending()
	for i := 0; i <= k && i < len(items); i++ {
		e.receive(items[i], rec)
	}
	if k+1 >= len(items) {
		e.setPending(nil) // free it: most endpoints have nothing pending
		return
	}
	e.setPending(append(items[:0], items[k+1:]...))
}

// deliverAnswered commits every pending item that is not taken as
// undelivered (see item.unanswered) and forgets the rest.
func (e *endpoint) deliverAnswered(rec recorder) {
	items := e.pending()
	for i := range items {
		if !items[i].unanswered {
			e.receive(items[i], rec)
		}
	}
	e.setPending(nil)
}

// doubt marks the pending SYN or FIN items whose own sequence number is
// seq as unanswered (see item.unanswered).
func (e *endpoint) doubt(seq seqnum.Value) {
	items := e.pending()
	for i := range items {
		if it := &items[i]; it.occupies() && it.seq == seq {
			it.unanswered = true
		}
	}
}

// drop forgets pending items that acknowledged e's sequence number upTo or
// beyond: they were lost (e retransmitted what they acknowledged). It
// returns the dropped items' packet indexes.
func (e *endpoint) drop(upTo seqnum.Value) []int {
	var lost []int
	items := e.pending()
	out := items[:0]
	for _, it := range items {
		if it.flags.Has(header.ACK) && !it.flags.Has(header.RST) && it.ack.GreaterThanEq(upTo) {
			lost = append(lost, int(it.pkt))
			continue
		}
		out = append(out, it)
	}
	if len(lost) > 0 {
		e.setPending(out)
	}
	return lost
}

// believed is e's state with every pending delivery applied, and TIME-WAIT
// expired at instant at after tw.
func (e *endpoint) believed(at int64, tw time.Duration) (tcp.State, int64) {
	c := *e
	if items := e.pending(); len(items) > 0 {
		c.setPending(nil)
		for _, it := range items {
			if !it.unanswered {
				c.receive(it, recorder{})
			}
		}
	}
	if c.st == tcp.TimeWait && at >= c.twStart+int64(tw) {
		return tcp.Closed, c.twStart + int64(tw)
	}
	return c.st, c.twStart
}
