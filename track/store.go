package track

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// A Conn holds its parts in compact form, and the code that reasons
// about them works on full-width copies:
//
//   - its times other than the first are stamps: 32 bits after its first
//     packet, in microseconds (up to 35 minutes after it) or, for a
//     capture with nanosecond timestamps, in nanoseconds (up to 2
//     seconds), the exact value kept in the extension (connExt.far) when
//     neither holds it, so that every time read back is exactly the one
//     stored;
//   - its endpoints are epStores, loaded into an endpoint (loadEp) to be
//     reasoned about and stored back (storeEp): the one pending item most
//     endpoints have is held inline, several (or one whose time is no
//     stamp, or any of a kept connection, whose items carry their packet
//     index for the ladder) in the extension.

// stamp is one of a connection's times (Unix nanoseconds): 0 for the
// time 0 (a time never set), stampFar when the time is in the extension,
// stampNanos plus the nanoseconds after the connection's first packet,
// else 1 plus the microseconds after it.
type stamp uint32

const (
	stampNanos stamp = 1 << 31   // the bit of a stamp in nanoseconds
	stampFar   stamp = 1<<32 - 1 // a time held exactly in the extension
	maxMicros        = 1<<31 - 2 // the most microseconds a stamp holds
	maxNanos         = 1<<31 - 2 // the most nanoseconds a stamp holds
)

// The slots of connExt.far, one per stamp field of a Conn.
const (
	farLast = iota       // Conn.last
	farFin               // dirStats.finT, per direction (farFin+d)
	farTW   = farFin + 2 // epStore.twStart, per endpoint (farTW+d)
	numFar  = farTW + 2
	farNone = -1 // a stamp that is never far (an inline pending item's)
)

// stampOf returns t as a stamp of c, and false when it is not one (not
// after c's first packet by a whole number of microseconds or few enough
// nanoseconds).
func (c *Conn) stampOf(t int64) (stamp, bool) {
	if t == 0 {
		return 0, true
	}
	d := t - c.first
	switch {
	case d < 0:
	case d%1000 == 0 && d/1000 <= maxMicros:
		return stamp(d/1000 + 1), true
	case d <= maxNanos:
		return stampNanos | stamp(d), true
	}
	return stampFar, false
}

// toStamp returns t as a stamp of c, keeping it in the extension's slot
// far when it is not one.
func (c *Conn) toStamp(t int64, far int) stamp {
	s, ok := c.stampOf(t)
	if !ok {
		c.ext().far[far] = t
	}
	return s
}

// time is the time stamp s stands for (far its slot in the extension).
func (c *Conn) time(s stamp, far int) int64 {
	switch {
	case s == 0:
		return 0
	case s == stampFar:
		return c.x.far[far]
	case s&stampNanos != 0:
		return c.first + int64(s&^stampNanos)
	}
	return c.first + int64(s-1)*1000
}

// usesFar reports whether one of c's times is held in the extension.
func (c *Conn) usesFar() bool {
	return c.last == stampFar || c.dir[0].finT == stampFar || c.dir[1].finT == stampFar ||
		c.ep[0].twStart == stampFar || c.ep[1].twStart == stampFar
}

// itemStore is a pending item held inline: its time a stamp, no packet
// index (only a kept connection's ladder needs it, and a kept connection
// holds its items in the extension).
type itemStore struct {
	t          stamp
	seq, ack   seqnum.Value
	flags      header.TCPFlags
	unanswered bool
}

// epStore is an endpoint as a Conn holds it (32 bytes): see endpoint for
// the fields.
type epStore struct {
	one     itemStore // the pending item when npend is 1
	twStart stamp
	iss     seqnum.Value
	finSeq  seqnum.Value
	st      tcp.State
	initial tcp.State
	flags   epFlag
	npend   uint8 // 0, 1 (in one) or pendExt
}

// pendExt is epStore.npend when the pending items are in the extension
// (connExt.more).
const pendExt = 2

// is reports whether fact f holds for the endpoint.
func (s *epStore) is(f epFlag) bool { return s.flags&f != 0 }

// relevant is endpoint.relevant on the stored endpoint.
func (s *epStore) relevant(f header.TCPFlags, ack seqnum.Value) bool {
	e := endpoint{iss: s.iss, finSeq: s.finSeq, flags: s.flags}
	return e.relevant(f, ack)
}

// loadEp returns endpoint d of c in full. Its pending items in the
// extension are shared: changing them through the endpoint changes them
// in c.
func (c *Conn) loadEp(d int) endpoint {
	s := &c.ep[d]
	e := endpoint{twStart: c.time(s.twStart, farTW+d), iss: s.iss, finSeq: s.finSeq,
		st: s.st, initial: s.initial, flags: s.flags}
	switch s.npend {
	case 1:
		o := &s.one
		e.one[0] = item{t: c.time(o.t, farNone), seq: o.seq, ack: o.ack, flags: o.flags, unanswered: o.unanswered}
		e.npend = 1
	case pendExt:
		e.more = &c.x.more[d]
	}
	return e
}

// storeEp makes e endpoint d of c.
func (c *Conn) storeEp(d int, e *endpoint) {
	s := &c.ep[d]
	s.twStart = c.toStamp(e.twStart, farTW+d)
	s.iss, s.finSeq, s.st, s.initial, s.flags = e.iss, e.finSeq, e.st, e.initial, e.flags
	s.one, s.npend = itemStore{}, 0
	switch {
	case e.more != nil:
		x := c.ext()
		if e.more != &x.more[d] {
			x.more[d] = *e.more
		}
		s.npend = pendExt
		return
	case e.npend == 1:
		it := &e.one[0]
		if t, ok := c.stampOf(it.t); ok && !c.flag(cfKeep) {
			s.one = itemStore{t: t, seq: it.seq, ack: it.ack, flags: it.flags, unanswered: it.unanswered}
			s.npend = 1
			break
		}
		x := c.ext()
		x.more[d] = append(x.more[d][:0], *it)
		s.npend = pendExt
		return
	}
	if c.x != nil {
		c.x.more[d] = nil
	}
}

// believed is endpoint d's believed state at at (see endpoint.believed).
func (c *Conn) believed(d int, at int64, tw time.Duration) (tcp.State, int64) {
	if s := &c.ep[d]; s.npend == 0 && s.st != tcp.TimeWait {
		return s.st, c.time(s.twStart, farTW+d) // nothing pending, no timer: the state stands
	}
	e := c.loadEp(d)
	return e.believed(at, tw)
}

// proven is endpoint d's state from proven deliveries only, with
// TIME-WAIT expired at instant at after tw.
func (c *Conn) proven(d int, at int64, tw time.Duration) tcp.State {
	s := &c.ep[d]
	if s.st == tcp.TimeWait && at >= c.time(s.twStart, farTW+d)+int64(tw) {
		return tcp.Closed
	}
	return s.st
}

// connFlag is one of a connection's yes/no facts, bits of Conn.flags.
type connFlag uint8

const (
	ctFirst connFlag = 1 << iota // the packet that created ct came from the client
	zkFirst                      // the first packet the Zeek flow saw came from the client
	cfInSet                      // inEnd[0] is set (cfInSet<<1: inEnd[1])
	cfInSet1
	cfSuperseded // a later connection on the tuple took its place
	cfKeep       // its packets and transitions are kept for Records
	cfHasCT      // ct holds a conntrack entry
	cfHasVS      // vs holds an IPVS entry
)

// flag reports whether fact f holds for c.
func (c *Conn) flag(f connFlag) bool { return c.flags&f != 0 }

// mark sets fact f of c to v.
func (c *Conn) mark(f connFlag, v bool) {
	if v {
		c.flags |= f
	} else {
		c.flags &^= f
	}
}

// dsFlag is one of a direction's yes/no facts, bits of dirStats.bits.
type dsFlag uint8

const (
	dsEndSeen  dsFlag = 1 << iota // lo and end are set
	dsLastData                    // the last packet this way carried payload
	dsHalfOpen                    // answered the peer's data with a bare RST
)

// is reports whether fact f holds for the direction.
func (ds *dirStats) is(f dsFlag) bool { return ds.bits&f != 0 }

// mark sets fact f of the direction to v.
func (ds *dirStats) mark(f dsFlag, v bool) {
	if v {
		ds.bits |= f
	} else {
		ds.bits &^= f
	}
}
