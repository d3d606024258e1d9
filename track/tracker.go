package track

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
	"github.com/tcpstate/tcpstate/track/capture"
	"github.com/tcpstate/tcpstate/track/conntrack"
	"github.com/tcpstate/tcpstate/track/ipvs"
	"github.com/tcpstate/tcpstate/track/zeek"
)

// DefaultTimeWait is how long an endpoint stays in TIME-WAIT: Linux's
// TCP_TIMEWAIT_LEN (60 s, include/net/tcp.h).
const DefaultTimeWait = 60 * time.Second

// Config configures a Tracker.
type Config struct {
	// TimeWait is how long TIME-WAIT lasts; 0 means DefaultTimeWait.
	TimeWait time.Duration
	// IPVSMode is the IPVS forwarding method modelled: ipvs.NAT (the
	// director sees both directions) or ipvs.DR (client packets only).
	IPVSMode ipvs.Mode
	// ZeekServerPorts, when set, is the Zeek model's likely_server_ports
	// (see zeek.Flow.PacketWithServerPorts); nil means
	// zeek.DefaultLikelyServerPort.
	ZeekServerPorts func(port uint16) bool
	// Keep, when set, selects connections (by client and server, or
	// either order) whose packets and transitions are kept for Records.
	Keep func(a, b netip.AddrPort) bool
	// Done, when set, receives each connection once it is final: both
	// endpoints CLOSED (TIME-WAIT over), nothing pending that could change
	// a state, and neither conntrack nor IPVS holding an entry for it, so
	// that its view is the same at every later instant (a later packet
	// on its tuple starts a new connection). The tracker then forgets it:
	// it is no longer in Snapshot, Conns or Sample, and memory stays
	// bounded by the connections alive. Connections are handed over in
	// the order the tracker finds them final, checked every few thousand
	// packets and at Flush. The view is valid only during the call.
	Done func(v *ConnView)
}

// span is a range of sequence space seen, [lo, hi).
type span struct{ lo, hi seqnum.Value }

// maxSpans bounds the ranges kept per direction; past it the two closest
// are merged (a hole forgotten: a later segment filling it counts as a
// retransmission).
const maxSpans = 16

// dirStats is what the tracker counts for one direction (32 bytes). The
// sequence space seen is one span [lo, end) while it has no hole (the
// common case), and the extension's holes hold every span otherwise.
// Counters spill into the connection's rare extension when they would
// overflow: packets and bytes are 32 bits, retransmissions 16, RSTs and
// zero windows, rarer still, 8.
type dirStats struct {
	finT           stamp        // when its last FIN was seen
	lo, end        seqnum.Value // the sequence space seen without holes; end is the highest seq end
	lastAck        seqnum.Value // the last packet's ACK field
	packets, bytes uint32
	retrans        uint16
	win            uint16
	rsts, zeroWin  uint8
	ws             int8 // window scale offered in the SYN, -1 none
	bits           dsFlag
}

// big is the overflow of a direction's 32-bit counters.
type big struct {
	packets, bytes, retrans, rsts, zeroWin uint64
}

// connExt holds the rarely used parts of a connection, allocated when
// first needed: pending items that do not fit inline (see epStore), times
// that are no stamp, and, each in an allocation of its own as rarer
// still, the sequence space with holes and the packets held for
// reordering, overflowed counters, an address pair that is not plain
// IPv4, Zeek's rare part and what a kept connection records for its
// ladder. It is allocated and freed as a connection's needs come and go
// (see shrink), so it is kept small: 128 bytes.
type connExt struct {
	more [2][]item      // per endpoint, its pending items when not inline (epStore.npend pendExt)
	far  [numFar]int64  // the times whose stamp is stampFar, Unix nanoseconds
	gaps *gaps          // holes and held packets, per direction
	big  *[2]big        // the overflow of the counters, per direction
	v6   *[2]netip.Addr // client and server when not both plain IPv4
	zk   *zeek.Rare     // the rare part of Conn.zk
	*keptLog
}

// gaps is what a connection keeps about holes in its sequence space.
type gaps struct {
	holes [2][]span // per direction, the spans seen when there are holes between them (else nil)
	held  [2][]held // per direction, the packets held until a hole before them fills
}

// gaps returns c's gaps, allocating them.
func (c *Conn) gaps() *gaps {
	x := c.ext()
	if x.gaps == nil {
		x.gaps = &gaps{}
	}
	return x.gaps
}

// keptLog is what a kept connection (Config.Keep) records for its ladder.
type keptLog struct {
	pkts  []pktLog
	trans [2][]transition
	lost  []int // packets whose loss a retransmission revealed
	order []int // packet indexes in the order inferred
	cur   int   // the packet being processed, -1 after Finish
}

// overflow returns the overflow of direction d's counters, allocating it.
func (c *Conn) overflow(d int) *big {
	x := c.ext()
	if x.big == nil {
		x.big = new([2]big)
	}
	return &x.big[d]
}

// Conn is one connection (one incarnation on its 4-tuple). The middlebox
// entries belong to the tuple (conntrack and IPVS reuse them when a
// connection reopens): the current connection on a tuple holds them and
// hands them to the next incarnation.
//
// A Conn lives in its tracker's slab (slab.go) and is kept small: its
// times are stamps and its endpoints compact (store.go), its client and
// server are held in compact form (tuple.go), its yes/no facts are bits,
// what is rarely needed is in the extension (connExt), and its fields are
// ordered so that two bytes of padding are all it wastes (288 bytes in
// all). Its number of packets so far is the sum of its directions'
// counters.
type Conn struct {
	// What a flow-table lookup reads comes first, in the same cache line
	// as what every packet reads.
	v4   [2][4]byte // client and server IPv4 addresses (unless the extension's v6)
	port [2]uint16  // client and server ports
	next connRef    // the next connection in the flow table's bucket (in the slab's free list when free)
	last stamp      // last packet's timestamp

	// MidStream is set when the connection's start was not captured.
	MidStream bool

	flags connFlag
	first int64  // first packet's timestamp, Unix nanoseconds: the base of its stamps
	id    uint64 // index of its first packet in the whole capture: the output order
	x     *connExt
	ep    [2]epStore
	dir   [2]dirStats
	ct    conntrack.Entry
	vs    ipvs.Entry
	zk    zeek.Core       // its rare part is the extension's zk
	inEnd [2]seqnum.Value // highest sequence end of the packets inferred, per direction (cfInSet)
}

// fromClient reports whether the model whose bit b is (ctFirst, zkFirst)
// saw its first packet from the client.
func (c *Conn) fromClient(b connFlag) bool { return c.flag(b) }

// setFromClient sets bit b to v.
func (c *Conn) setFromClient(b connFlag, v bool) { c.mark(b, v) }

// npkt is the number of packets seen so far, at most 1<<31-1: the index
// of the next packet in the connection.
func (c *Conn) npkt() int {
	n := uint64(c.dir[0].packets) + uint64(c.dir[1].packets)
	if c.x != nil && c.x.big != nil {
		n += c.x.big[0].packets + c.x.big[1].packets
	}
	return int(min(n, 1<<31-1))
}

// First and Last are when the connection's first and last packets were
// seen.
func (c *Conn) First() time.Time { return fromNanos(c.first) }

// Last: see First.
func (c *Conn) Last() time.Time { return fromNanos(c.lastNanos()) }

// lastNanos is the last packet's timestamp, Unix nanoseconds.
func (c *Conn) lastNanos() int64 { return c.time(c.last, farLast) }

// fromNanos is the UTC time of Unix nanoseconds n.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// ext returns c's extension, allocating it.
func (c *Conn) ext() *connExt {
	if c.x == nil {
		c.x = &connExt{}
	}
	return c.x
}

// heldN is the number of packets held for reordering.
func (c *Conn) heldN() int {
	if c.x == nil {
		return 0
	}
	g := c.x.gaps
	if g == nil {
		return 0
	}
	return len(g.held[0]) + len(g.held[1])
}

// counters returns direction d's counters, the overflow included.
func (c *Conn) counters(d int) big {
	ds := &c.dir[d]
	b := big{packets: uint64(ds.packets), bytes: uint64(ds.bytes), retrans: uint64(ds.retrans),
		rsts: uint64(ds.rsts), zeroWin: uint64(ds.zeroWin)}
	if c.x != nil && c.x.big != nil {
		o := &c.x.big[d]
		b.packets += o.packets
		b.bytes += o.bytes
		b.retrans += o.retrans
		b.rsts += o.rsts
		b.zeroWin += o.zeroWin
	}
	return b
}

// add adds n to a 32-bit counter, moving it to the overflow o first when
// it would wrap.
func add(v *uint32, o *uint64, n uint64) {
	if uint64(*v)+n > 1<<32-1 {
		*o += uint64(*v) + n
		*v = 0
		return
	}
	*v += uint32(n)
}

// inc adds one to a counter of direction d, spilling it into the
// overflow field of c's extension that over names when it reaches its
// maximum.
func inc[T uint8 | uint16 | uint32](c *Conn, v *T, d int, over func(*big) *uint64) {
	*v++
	if *v == ^T(0) {
		*over(c.overflow(d)) += uint64(*v)
		*v = 0
	}
}

// pktLog is one packet of a kept connection.
type pktLog struct {
	t       time.Time
	d       int
	seg     tcp.SegmentInfo
	opts    string
	retrans bool
}

// Tracker follows every TCP connection in a stream of packets.
type Tracker struct {
	cfg         Config
	slab        slab
	flows       []connRef // buckets by tuple hash (pairHash): the current connection of each tuple, chained
	nflows      int       // tuples in flows
	conns       []connRef // every connection held, in order of first packet
	first, last int64
	packets     uint64
	counts      *[tcp.NumStates][tcp.NumStates][numCauses]uint64 // committed transitions by from, to and cause
	sinceSweep  int
	held        int  // connections held after the last sweep
	manual      bool // sweeps only when told (a Sharded worker)
}

// New returns an empty Tracker.
func New(cfg Config) *Tracker {
	if cfg.TimeWait <= 0 {
		cfg.TimeWait = DefaultTimeWait
	}
	if cfg.ZeekServerPorts == nil {
		cfg.ZeekServerPorts = zeek.DefaultLikelyServerPort
	}
	return &Tracker{cfg: cfg, flows: make([]connRef, 1024), counts: new([tcp.NumStates][tcp.NumStates][numCauses]uint64)}
}

// First and Last are the timestamps of the first and the latest packet
// fed; zero before any.
func (t *Tracker) First() time.Time {
	if t.packets == 0 {
		return time.Time{}
	}
	return fromNanos(t.first)
}

// Last: see First.
func (t *Tracker) Last() time.Time {
	if t.packets == 0 {
		return time.Time{}
	}
	return fromNanos(t.last)
}

// Packets is the number of packets fed.
func (t *Tracker) Packets() uint64 { return t.packets }

// Conns returns every connection held, in order of first packet: those
// seen, less those handed to Config.Done. A *Conn is valid while its
// connection is held: once handed to Done or pruned, its memory is reused.
func (t *Tracker) Conns() []*Conn {
	out := make([]*Conn, len(t.conns))
	for i, r := range t.conns {
		out[i] = t.slab.at(r)
	}
	return out
}

// segEnd is the end of the sequence space a segment occupies.
func segEnd(p *capture.Packet) seqnum.Value {
	e := p.Seq.Add(seqnum.Size(max(p.PayloadLen, 0)))
	if p.Flags.Has(header.SYN) {
		e++
	}
	if p.Flags.Has(header.FIN) {
		e++
	}
	return e
}

// hashKey makes the flow table's hash differ from process to process, so
// that a capture cannot be crafted to fill one bucket.
var hashKey = maphash.Comparable(maphash.MakeSeed(), 0) | 1

// addrPortHash hashes one endpoint: its address (an IPv4 address as its
// 4 bytes, an IPv6 one folded to 8) and port, multiplied by a 64-bit odd
// constant (Fibonacci hashing) and folded so the low bits, which index
// the table, depend on every input bit.
func addrPortHash(a netip.AddrPort) uint64 {
	ad := a.Addr()
	var x uint64
	if ad.Is4() {
		b := ad.As4()
		x = uint64(binary.LittleEndian.Uint32(b[:]))
	} else {
		b := ad.As16()
		x = binary.LittleEndian.Uint64(b[:8])*0xff51afd7ed558ccd ^ binary.LittleEndian.Uint64(b[8:])
	}
	x = (x ^ uint64(a.Port())<<32 ^ hashKey) * 0x9e3779b97f4a7c15
	return x ^ x>>32
}

// pairHash hashes the unordered pair {a, b}: the sum of the two
// endpoints' hashes, so that either direction finds the same bucket.
func pairHash(a, b netip.AddrPort) uint64 { return addrPortHash(a) + addrPortHash(b) }

// bucket is the flow-table slot of hash h.
func (t *Tracker) bucket(h uint64) *connRef { return &t.flows[h&uint64(len(t.flows)-1)] }

// lookup returns the current connection on the tuple {a, b} and the link
// that names it (the bucket or the previous connection's next).
func (t *Tracker) lookup(h uint64, a, b netip.AddrPort) (*Conn, *connRef) {
	link := t.bucket(h)
	aa, ba := a.Addr(), b.Addr()
	if aa.Is4() && ba.Is4() {
		// The common case, compared as the Conn holds it.
		fwd, ports := [2][4]byte{aa.As4(), ba.As4()}, [2]uint16{a.Port(), b.Port()}
		rev, rports := [2][4]byte{fwd[1], fwd[0]}, [2]uint16{ports[1], ports[0]}
		for r := *link; r != 0; {
			c := t.slab.at(r)
			if (c.v4 == fwd && c.port == ports || c.v4 == rev && c.port == rports) && !c.isV6() {
				return c, link
			}
			link, r = &c.next, c.next
		}
		return nil, nil
	}
	for r := *link; r != 0; {
		c := t.slab.at(r)
		if c.matches(a, b) {
			return c, link
		}
		link, r = &c.next, c.next
	}
	return nil, nil
}

// replace puts n, in slot nr, in old's place, at link (old nil: at the
// head of bucket h, growing the table when it holds more tuples than
// buckets).
func (t *Tracker) replace(h uint64, old *Conn, link *connRef, n *Conn, nr connRef) {
	if old == nil {
		t.nflows++
		if t.nflows > len(t.flows) {
			t.grow()
		}
		head := t.bucket(h)
		n.next = *head
		*head = nr
		return
	}
	n.next, old.next = old.next, 0
	*link = nr
}

// grow doubles the flow table.
func (t *Tracker) grow() {
	old := t.flows
	t.flows = make([]connRef, 2*len(old))
	for _, r := range old {
		for r != 0 {
			c := t.slab.at(r)
			next := c.next
			head := t.bucket(pairHash(c.Client(), c.Server()))
			c.next = *head
			*head = r
			r = next
		}
	}
}

// unlink removes c, the current connection of its tuple, from the table.
func (t *Tracker) unlink(c *Conn) {
	cur, link := t.lookup(pairHash(c.Client(), c.Server()), c.Client(), c.Server())
	if cur != c {
		return
	}
	*link = c.next
	c.next = 0
	t.nflows--
}

// forget drops the connection in slot r, which the caller removes from
// t.conns: out of the flow table (unless a later connection on its tuple
// took its place there) and back to the slab.
func (t *Tracker) forget(r connRef) {
	c := t.slab.at(r)
	if !c.flag(cfSuperseded) {
		t.unlink(c)
	}
	t.slab.release(r)
}

// Feed processes the next packet. Packets must come in timestamp order;
// the Packet is not retained.
func (t *Tracker) Feed(p *capture.Packet) {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return
	}
	t.feed(p, t.packets, pairHash(p.Src, p.Dst))
}

// feed is Feed for a valid packet numbered id in the whole capture (a
// Sharded worker sees only some), whose tuple's pairHash is h.
func (t *Tracker) feed(p *capture.Packet, id, h uint64) {
	now := p.T.UnixNano()
	if t.packets == 0 {
		t.first = now
	}
	t.packets++
	if now > t.last || t.packets == 1 {
		t.last = now
	}
	c, link := t.lookup(h, p.Src, p.Dst)
	if c == nil || t.newIncarnation(c, p, now) {
		nr, n := t.newConn(p, now)
		n.id = id
		if c != nil {
			c.mark(cfSuperseded, true)
			// The middlebox entries pass to the new connection.
			ctFirstSide := 1
			if c.fromClient(ctFirst) {
				ctFirstSide = 0
			}
			n.ct, n.vs = c.ct, c.vs
			n.mark(cfHasCT, c.flag(cfHasCT))
			n.mark(cfHasVS, c.flag(cfHasVS))
			n.setFromClient(ctFirst, n.is(0, c.at(ctFirstSide)))
			c.mark(cfHasCT, false)
			c.mark(cfHasVS, false)
		}
		t.replace(h, c, link, n, nr)
		c = n
	}
	t.packet(c, p, now)
	if t.cfg.Done != nil && !t.manual {
		t.sinceSweep++
		// Every half as many packets as connections were held after the
		// last sweep (at least 4096): the same rule as Sharded's, so
		// that the two stream the same views in the same order.
		if t.sinceSweep >= max(4096, t.held/2) {
			t.sweep(now)
		}
	}
}

// newIncarnation reports whether p, arriving on c's tuple, opens a new
// connection: a SYN without ACK that is not a retransmission of c's SYN,
// when c has ended, or when c's receiver is in TIME-WAIT and the SYN's
// sequence number is beyond what the old connection used (RFC 9293
// §3.6.1, RFC 6191; Linux tcp_timewait_state_process). Any packet opens a
// new connection once c is final (see Final): its endpoints closed and
// every middlebox forgot it, so that the packet is, for all of them, the
// first of a connection picked up mid-stream.
func (t *Tracker) newIncarnation(c *Conn, p *capture.Packet, now int64) bool {
	if p.Flags&(header.SYN|header.ACK|header.RST) != header.SYN {
		return t.final(c, now)
	}
	d := c.side(p.Src)
	if c.ep[d].is(epSentSyn) && p.Seq == c.ep[d].iss {
		return t.final(c, now)
	}
	s0, _ := c.believed(0, now, t.cfg.TimeWait)
	s1, _ := c.believed(1, now, t.cfg.TimeWait)
	if s0 == tcp.Closed && s1 == tcp.Closed {
		return true
	}
	sr := s1
	if d == 1 {
		sr = s0
	}
	if sr == tcp.TimeWait || sr == tcp.Closed {
		return !c.dir[d].is(dsEndSeen) || p.Seq.GreaterThan(c.dir[d].end)
	}
	return false
}

// final reports whether c can no longer change at now or any later
// instant, before another packet: both endpoints CLOSED in the proven and
// the believed view (TIME-WAIT over), no packet held, and neither
// conntrack nor IPVS holding an entry for it. A kept connection is never
// final.
func (t *Tracker) final(c *Conn, now int64) bool {
	if c.flag(cfKeep) || c.heldN() > 0 {
		return false
	}
	tw := t.cfg.TimeWait
	for d := range c.ep {
		switch c.ep[d].st {
		case tcp.Closed, tcp.TimeWait:
		default:
			return false
		}
		if c.proven(d, now, tw) != tcp.Closed {
			return false
		}
		if s, _ := c.believed(d, now, tw); s != tcp.Closed {
			return false
		}
	}
	at := fromNanos(now)
	if c.flag(cfHasCT) {
		if _, _, ok := c.ct.At(at); ok {
			return false
		}
	}
	if c.flag(cfHasVS) {
		if _, _, ok := c.vs.At(at); ok {
			return false
		}
	}
	return true
}

// sweep hands the connections that are final at now to Config.Done and
// forgets them, so that memory does not grow with the capture's length.
func (t *Tracker) sweep(now int64) { t.sweepIDs(now, nil) }

// sweepIDs is sweep, appending to ids (when not nil) the id of each
// connection handed over.
func (t *Tracker) sweepIDs(now int64, ids *[]uint64) {
	t.sinceSweep = 0
	out := t.conns[:0]
	for _, r := range t.conns {
		c := t.slab.at(r)
		if !t.final(c, now) {
			out = append(out, r)
			continue
		}
		t.finish(c, now)
		v := t.view(c, now)
		t.cfg.Done(&v)
		if ids != nil {
			*ids = append(*ids, c.id)
		}
		t.forget(r)
	}
	t.conns = out
	t.held = len(out)
}

// Flush hands every connection that is final at instant at to
// Config.Done (when set) and forgets it; Feed does so now and then.
func (t *Tracker) Flush(at time.Time) {
	if t.cfg.Done != nil {
		t.sweep(at.UnixNano())
	}
}

func (c *Conn) side(src netip.AddrPort) int {
	if c.is(0, src) {
		return 0
	}
	return 1
}

// newConn starts a connection with p, its first packet, at now.
func (t *Tracker) newConn(p *capture.Packet, now int64) (connRef, *Conn) {
	r, c := t.slab.alloc()
	c.first = now
	c.dir[0].ws, c.dir[1].ws = -1, -1
	syn, ack := p.Flags.Has(header.SYN), p.Flags.Has(header.ACK)
	switch {
	case syn && !ack:
		c.setTuple(p.Src, p.Dst)
		c.ep[1].st = tcp.Listen
	case syn && ack:
		// The SYN was not captured: its sender's state is what the
		// SYN,ACK acknowledges.
		c.setTuple(p.Dst, p.Src)
		c.ep[0] = epStore{st: tcp.SynSent, flags: epSentSyn, iss: p.Ack - 1}
		c.ep[1].st = tcp.Listen
	default:
		c.MidStream = true
		c.setTuple(p.Src, p.Dst)
		if p.Dst.Port() > p.Src.Port() {
			c.setTuple(p.Dst, p.Src)
		}
		for i := range c.ep {
			c.ep[i] = epStore{st: tcp.Established, flags: epSentSyn | epSynAcked | epRcvSyn}
		}
	}
	c.setFromClient(zkFirst, c.is(0, p.Src))
	c.ep[0].initial, c.ep[1].initial = c.ep[0].st, c.ep[1].st
	if t.cfg.Keep != nil && t.cfg.Keep(c.Client(), c.Server()) {
		c.mark(cfKeep, true)
		c.ext().keptLog = &keptLog{}
	}
	t.conns = append(t.conns, r)
	return r, c
}

// recorder returns the recorder of side d's transitions.
func (t *Tracker) recorder(c *Conn, d int) recorder { return recorder{t, c, d} }

// record counts a committed transition and, for a kept connection, keeps
// it for the ladder.
func (r recorder) record(tr transition) {
	r.t.counts[tr.from][tr.to][tr.cause]++
	if r.c.flag(cfKeep) {
		tr.at = r.c.x.cur
		r.c.x.trans[r.d] = append(r.c.x.trans[r.d], tr)
	}
}

// expire commits TIME-WAIT's end for endpoints whose timer ran out
// before now.
func (t *Tracker) expire(c *Conn, now int64) {
	for d := range c.ep {
		if c.ep[d].st == tcp.TimeWait {
			if end := c.time(c.ep[d].twStart, farTW+d) + int64(t.cfg.TimeWait); now >= end {
				e := c.loadEp(d)
				e.set(tcp.Closed, causeTimeout, end, -1, false, t.recorder(c, d))
				c.storeEp(d, &e)
			}
		}
	}
}

func (t *Tracker) packet(c *Conn, p *capture.Packet, now int64) {
	d := c.side(p.Src)
	idx := c.npkt()
	if p.Src == p.Dst {
		d = idx % 2 // a packet to itself (land attack): alternate
	}
	c.last = c.toStamp(now, farLast)
	if c.flag(cfKeep) {
		c.x.cur = idx
	}
	retrans := t.count(c, d, p, now)
	t.middleboxes(c, d, p)
	t.expire(c, now)
	if c.flag(cfKeep) {
		c.x.pkts = append(c.x.pkts, pktLog{t: p.T, d: d, retrans: retrans, opts: trace.FormatOptions(&p.Options),
			seg: tcp.SegmentInfo{Seq: p.Seq, Ack: p.Ack, Flags: p.Flags, Window: p.Window, Len: max(p.PayloadLen, 0)}})
	}
	t.order(c, d, p, idx, now)
}

// holdMax is how long a packet that arrived after a hole in its sender's
// sequence space waits for the hole to fill before its inference runs
// anyway (the hole was a loss before the capture point).
const holdMax = 200 * time.Millisecond

// maxHeld bounds the packets held per direction.
const maxHeld = 8

// held is a packet whose inference waits for a hole before it to fill.
type held struct {
	p   capture.Packet
	idx int
}

// order runs the state inference for p in its sender's sending order. A
// packet beyond the highest sequence its sender was seen to reach was
// sent after segments the capture has not seen yet: they were reordered
// before the capture point (or lost there). Its inference is held until
// those arrive or holdMax passes, so that, for instance, an ACK that
// overtook its sender's FIN does not make the FIN look sent after it.
// Counters and middleboxes see packets in capture order, as a middlebox
// at the capture point would.
func (t *Tracker) order(c *Conn, d int, p *capture.Packet, idx int, now int64) {
	if c.heldN() > 0 {
		t.release(c, now, false)
	}
	end := segEnd(p)
	switch {
	case p.Flags.Has(header.RST) || p.Flags.Has(header.SYN) || !c.flag(cfInSet<<d):
		// An RST's sequence number is not a position in the stream; a
		// SYN starts it.
	case p.Seq.GreaterThan(c.inEnd[d]):
		g := c.gaps()
		if len(g.held[d]) < maxHeld {
			g.held[d] = append(g.held[d], held{*p, idx})
			return
		}
	}
	t.inferInOrder(c, d, p, idx, end)
	// Release the held packets the hole no longer separates.
	for c.x != nil && c.x.gaps != nil {
		hd := &c.x.gaps.held[d]
		k := -1
		for i := range *hd {
			if (*hd)[i].p.Seq.LessThanEq(c.inEnd[d]) {
				k = i
				break
			}
		}
		if k < 0 {
			break
		}
		h := (*hd)[k]
		*hd = append((*hd)[:k], (*hd)[k+1:]...)
		t.inferInOrder(c, d, &h.p, h.idx, segEnd(&h.p))
	}
	c.shrink()
}

// shrink frees c's extension when nothing is left in it.
func (c *Conn) shrink() {
	x := c.x
	if x == nil || c.flag(cfKeep) {
		return
	}
	if g := x.gaps; g != nil && len(g.held[0])+len(g.held[1]) == 0 && g.holes[0] == nil && g.holes[1] == nil {
		x.gaps = nil
	}
	if x.gaps != nil || x.big != nil || x.v6 != nil || x.zk != nil || x.more[0] != nil || x.more[1] != nil || c.usesFar() {
		return
	}
	c.x = nil
}

// release runs the inference of held packets older than holdMax at now
// (all of them when all is set), oldest first.
func (t *Tracker) release(c *Conn, now int64, all bool) {
	if c.x == nil || c.x.gaps == nil {
		return
	}
	for d := range c.x.gaps.held {
		hd := &c.x.gaps.held[d]
		for len(*hd) > 0 && (all || now-(*hd)[0].p.T.UnixNano() >= int64(holdMax)) {
			h := (*hd)[0]
			*hd = (*hd)[1:]
			t.inferInOrder(c, d, &h.p, h.idx, segEnd(&h.p))
		}
		if len(*hd) == 0 {
			*hd = nil
		}
	}
	c.shrink()
}

func (t *Tracker) inferInOrder(c *Conn, d int, p *capture.Packet, idx int, end seqnum.Value) {
	if !p.Flags.Has(header.RST) && (!c.flag(cfInSet<<d) || end.GreaterThan(c.inEnd[d])) {
		c.inEnd[d] = end
		c.mark(cfInSet<<d, true)
	}
	if !c.flag(cfKeep) {
		t.infer(c, d, p, idx)
		return
	}
	saved := c.x.cur
	c.x.cur = idx
	c.x.order = append(c.x.order, idx)
	t.infer(c, d, p, idx)
	c.x.cur = saved
}

// count updates direction d's counters and reports whether p is a
// retransmission.
func (t *Tracker) count(c *Conn, d int, p *capture.Packet, now int64) bool {
	ds := &c.dir[d]
	var o *big
	if c.x != nil && c.x.big != nil {
		o = &c.x.big[d]
	}
	n := max(p.PayloadLen, 0)
	if ds.packets == 1<<32-1 || uint64(ds.bytes)+uint64(n) > 1<<32-1 {
		o = c.overflow(d)
	}
	if o != nil {
		add(&ds.packets, &o.packets, 1)
		add(&ds.bytes, &o.bytes, uint64(n))
	} else {
		ds.packets++
		ds.bytes += uint32(n)
	}
	f := p.Flags
	if f.Has(header.SYN) && p.Options.HasWindowScale {
		ds.ws = int8(min(p.Options.WindowScale, 14)) // RFC 7323 §2.3: at most 14
	}
	if !f.Has(header.RST) {
		ds.win = p.Window
		if p.Window == 0 && !f.Has(header.SYN) {
			inc(c, &ds.zeroWin, d, func(b *big) *uint64 { return &b.zeroWin })
		}
	}
	if f.Has(header.RST) {
		inc(c, &ds.rsts, d, func(b *big) *uint64 { return &b.rsts })
		peer := &c.dir[1-d]
		// RFC 9293 §3.10.7.1: a host with no connection answers a
		// segment carrying an ACK with an RST whose sequence number is
		// that ACK, and no ACK of its own.
		if !f.Has(header.ACK) && peer.is(dsLastData) && p.Seq == peer.lastAck && !c.ep[d].is(epSentFin) {
			ds.mark(dsHalfOpen, true)
		}
	}
	ds.mark(dsLastData, n > 0)
	ds.lastAck = p.Ack
	end := segEnd(p)
	if f.Has(header.FIN) {
		ds.finT = c.toStamp(now, farFin+d)
	}
	if end == p.Seq || f.Has(header.RST) {
		return false
	}
	retrans := c.addSpan(d, span{p.Seq, end})
	if retrans {
		inc(c, &ds.retrans, d, func(b *big) *uint64 { return &b.retrans })
	}
	return retrans
}

// addSpan records s as seen, updates end, and reports whether s
// overlapped space seen before. While the space seen has no hole it is
// the one span [lo, end), with nothing allocated.
func (c *Conn) addSpan(d int, s span) bool {
	ds := &c.dir[d]
	if c.x == nil || c.x.gaps == nil || c.x.gaps.holes[d] == nil {
		if !ds.is(dsEndSeen) {
			ds.lo, ds.end = s.lo, s.hi
			ds.mark(dsEndSeen, true)
			return false
		}
		if s.lo.LessThanEq(ds.end) && ds.lo.LessThanEq(s.hi) {
			// Touching or overlapping the one span: extend it.
			overlap := s.lo.LessThan(ds.end) && ds.lo.LessThan(s.hi)
			if s.lo.LessThan(ds.lo) {
				ds.lo = s.lo
			}
			if s.hi.GreaterThan(ds.end) {
				ds.end = s.hi
			}
			return overlap
		}
		c.gaps().holes[d] = []span{{ds.lo, ds.end}}
	}
	spans := c.x.gaps.holes[d]
	overlap := false
	for _, o := range spans {
		if s.lo.LessThan(o.hi) && o.lo.LessThan(s.hi) {
			overlap = true
			break
		}
	}
	// Insert in order and merge touching or overlapping spans.
	i := 0
	for i < len(spans) && !s.lo.LessThan(spans[i].lo) {
		i++
	}
	spans = append(spans, span{})
	copy(spans[i+1:], spans[i:])
	spans[i] = s
	merged := spans[:1]
	for _, o := range spans[1:] {
		last := &merged[len(merged)-1]
		if o.lo.LessThanEq(last.hi) {
			if o.hi.GreaterThan(last.hi) {
				last.hi = o.hi
			}
			continue
		}
		merged = append(merged, o)
	}
	// Forget spans far behind (beyond half the sequence space, where
	// comparisons stop meaning anything) and bound the number kept.
	hi := merged[len(merged)-1].hi
	for len(merged) > 1 && merged[0].hi.Size(hi) > 1<<30 {
		merged = merged[1:]
	}
	for len(merged) > maxSpans {
		best, gap := 0, seqnum.Size(1<<31)
		for i := 0; i+1 < len(merged); i++ {
			if g := merged[i].hi.Size(merged[i+1].lo); g < gap {
				best, gap = i, g
			}
		}
		merged[best].hi = merged[best+1].hi
		merged = append(merged[:best+1], merged[best+2:]...)
	}
	if s.hi.GreaterThan(ds.end) {
		ds.end = s.hi
	}
	if len(merged) == 1 {
		ds.lo, ds.end, c.x.gaps.holes[d] = merged[0].lo, merged[0].hi, nil
	} else {
		c.x.gaps.holes[d] = merged
	}
	return overlap
}

// middleboxes feeds p to the conntrack, IPVS and Zeek models.
func (t *Tracker) middleboxes(c *Conn, d int, p *capture.Packet) {
	n := max(p.PayloadLen, 0)
	cp := conntrack.Packet{T: p.T, Flags: p.Flags, Seq: p.Seq, Ack: p.Ack, Len: n, Window: p.Window}
	fromClient := d == 0 || p.Src == p.Dst // as c.is(0, p.Src): a packet to itself is from the client
	if !c.flag(cfHasCT) {
		if e, ok := conntrack.Make(cp); ok {
			c.ct = e
			c.mark(cfHasCT, true)
			c.setFromClient(ctFirst, fromClient)
		}
	} else {
		if fromClient != c.fromClient(ctFirst) {
			cp.Dir = conntrack.Reply
		}
		c.ct.Update(cp)
	}
	vp := ipvs.Packet{T: p.T, Flags: p.Flags, Dir: ipvs.FromClient}
	if d == 1 {
		vp.Dir = ipvs.FromServer
	}
	if !c.flag(cfHasVS) {
		if e, ok := ipvs.Make(vp, t.cfg.IPVSMode); ok {
			c.vs = e
			c.mark(cfHasVS, true)
		}
	} else {
		c.vs.Update(vp)
	}
	zp := zeek.Packet{Flags: p.Flags, Seq: p.Seq, Ack: p.Ack, Len: n, Window: p.Window,
		SrcPort: p.Src.Port(), DstPort: p.Dst.Port()}
	if fromClient != c.fromClient(zkFirst) {
		zp.Dir = zeek.Backward
	}
	var zx *zeek.Rare
	if c.x != nil {
		zx = c.x.zk
	}
	if zx = c.zk.Feed(zp, t.cfg.ZeekServerPorts, zx); zx != nil {
		c.ext().zk = zx
	}
}

// infer runs the endpoint state model for p, sent by side d.
func (t *Tracker) infer(c *Conn, d int, p *capture.Packet, idx int) {
	if f := p.Flags; f&(header.SYN|header.FIN|header.RST) == 0 && !c.flag(cfKeep) {
		// The common case, data or an ACK, needs no loading when all it
		// does is break the receiver's wait (epQuiet): inferEp delivers
		// nothing at the sender (only a SYN or a FIN pending is proven
		// by a packet, and a SYN-RECEIVED sender's new data is looked
		// at), and pushes nothing at the receiver (not relevant).
		sd, rd := &c.ep[d], &c.ep[1-d]
		if (sd.npend == 0 || sd.npend == 1 && sd.one.flags&(header.SYN|header.FIN) == 0) &&
			sd.st != tcp.SynReceived && !rd.relevant(f, p.Ack) {
			rd.flags &^= epQuiet
			return
		}
	}
	s0, r0 := c.loadEp(d), c.loadEp(1-d)
	s, r := s0, r0
	t.inferEp(c, d, &s, &r, p, idx)
	// An endpoint unchanged needs no storing (its pending items in the
	// extension, if any, were changed in place).
	if s != s0 {
		c.storeEp(d, &s)
	}
	if r != r0 {
		c.storeEp(1-d, &r)
	}
}

// inferEp is infer on the endpoints loaded: s the sender, r the receiver.
func (t *Tracker) inferEp(c *Conn, d int, s, r *endpoint, p *capture.Packet, idx int) {
	f := p.Flags
	now := p.T.UnixNano()
	recS, recR := t.recorder(c, d), t.recorder(c, 1-d)
	n := seqnum.Size(max(p.PayloadLen, 0))

	// What p shows its sender had received: the pending deliveries its
	// ACK covers, and those before them (TCP delivers in order).
	last := -1
	sp := s.pending()
	for i := range sp {
		if s.proves(&sp[i], f, p.Ack) {
			last = i
		}
	}
	// New sequence space from a SYN-RECEIVED endpoint shows it got the
	// ACK of its SYN,ACK.
	if s.st == tcp.SynReceived && s.is(epSentSyn) && !f.Has(header.SYN) && !f.Has(header.RST) &&
		(n > 0 || f.Has(header.FIN)) && p.Seq.GreaterThanEq(s.iss.Add(1)) {
		for i := range sp {
			if !sp[i].occupies() && sp[i].flags.Has(header.ACK) && sp[i].ack.GreaterThanEq(s.iss.Add(1)) {
				last = max(last, i)
			}
		}
	}
	if last >= 0 {
		s.deliver(last, recS)
	}

	// Any packet from s breaks r's wait for an answer (see quiet).
	r.mark(epQuiet, false)

	// What a retransmission reveals: the peer's ACK of what is resent
	// never arrived.
	var lost []int
	unanswered := false
	switch {
	case f.Has(header.SYN) && s.is(epSentSyn) && p.Seq == s.iss:
		lost = s.drop(s.iss.Add(1))
		// A SYN,ACK resent while the peer stayed silent since the first
		// one was not received by a TCP in SYN-SENT, which answers it at
		// once with an ACK (RFC 9293 §3.10.7.3).
		if f.Has(header.ACK) && s.is(epQuiet) {
			unanswered = true
			r.doubt(p.Seq)
		}
	case f.Has(header.FIN) && s.is(epSentFin) && p.Seq.Add(n) == s.finSeq:
		lost = s.drop(s.finSeq.Add(1))
		// Likewise a FIN, which its receiver acknowledges at once (RFC
		// 9293 §3.10.7.4, eighth: "send an acknowledgment for the FIN").
		if s.is(epQuiet) {
			unanswered = true
			r.doubt(s.finSeq)
		}
	}
	if c.flag(cfKeep) {
		c.x.lost = append(c.x.lost, lost...)
	}

	// What sending p means for its sender.
	switch {
	case f.Has(header.RST):
		s.mark(epSentRst, true)
		if s.st == tcp.Listen && !s.is(epSentSyn) {
			// Refused: no socket listened, so it never was in LISTEN
			// (RFC 9293 §3.10.7.1).
			s.st, s.initial = tcp.Closed, tcp.Closed
		} else {
			s.set(tcp.Closed, causeAbort, now, idx, true, recS)
		}
		s.setPending(nil)
	case f.Has(header.SYN):
		if !s.is(epSentSyn) {
			s.mark(epSentSyn, true)
			s.iss = p.Seq
			s.mark(epQuiet, f.Has(header.ACK))
		}
		if f.Has(header.ACK) {
			if s.st == tcp.Listen || s.st == tcp.Closed {
				s.mark(epRcvSyn, true)
				s.set(tcp.SynReceived, causeOf(header.SYN), now, idx, false, recS)
			}
		} else {
			switch s.st {
			case tcp.Closed:
				s.set(tcp.SynSent, causeActiveOpen, now, idx, true, recS)
			case tcp.Listen:
				// The side taken for a listener opens actively too:
				// a simultaneous open, so it was CLOSED, not LISTEN.
				s.st, s.initial = tcp.Closed, tcp.Closed
				s.set(tcp.SynSent, causeActiveOpen, now, idx, true, recS)
			}
		}
	}
	if f.Has(header.FIN) && !f.Has(header.RST) && !(s.is(epSentFin) && p.Seq.Add(n) == s.finSeq) {
		s.mark(epSentFin, true)
		s.finSeq = p.Seq.Add(n)
		s.mark(epFinAcked, false)
		s.mark(epQuiet, true)
		switch s.st {
		case tcp.Established, tcp.SynReceived:
			s.set(tcp.FinWait1, causeClose, now, idx, true, recS)
		case tcp.CloseWait:
			s.set(tcp.LastAck, causeClose, now, idx, true, recS)
		}
	}

	// What p means for its receiver, once it arrives.
	it := item{flags: f, seq: p.Seq, ack: p.Ack, t: now, pkt: int32(idx), unanswered: unanswered}
	if f.Has(header.FIN) {
		it.seq = p.Seq.Add(n)
	}
	switch {
	case f.Has(header.RST):
		// An RST is not acknowledged, so its delivery can never be
		// proven: it is taken as delivered.
		r.receive(it, recR)
		if r.st == tcp.Closed {
			r.setPending(nil)
		}
	case r.relevant(f, p.Ack):
		if rp := r.pending(); len(rp) > 0 && !it.occupies() {
			prev := &rp[len(rp)-1]
			if !prev.occupies() && prev.flags == it.flags && prev.ack == it.ack {
				return // a duplicate of a pending ACK
			}
		}
		r.push(it)
		if rp := r.pending(); len(rp) > maxPending {
			if rp[0].unanswered {
				r.setPending(append(rp[:0], rp[1:]...))
			} else {
				r.deliver(0, recR)
			}
		}
	}
}

// Finish commits every pending delivery as if it arrived, and the
// TIME-WAIT expiries due by at, so that the transition counts and the
// kept records are complete. Call it once, after the last Feed.
func (t *Tracker) Finish(at time.Time) {
	now := at.UnixNano()
	for _, r := range t.conns {
		t.finish(t.slab.at(r), now)
	}
}

// finish is Finish for one connection.
func (t *Tracker) finish(c *Conn, now int64) {
	t.release(c, now, true)
	if c.flag(cfKeep) {
		c.x.cur = -1
	}
	for d := range c.ep {
		if c.ep[d].npend != 0 {
			e := c.loadEp(d)
			e.deliverAnswered(t.recorder(c, d))
			c.storeEp(d, &e)
		}
	}
	t.expire(c, now)
}

// TransitionCounts returns the committed state changes of every endpoint,
// keyed by diagram edge, for trace.DiagramSVG and trace.DiagramDOT.
func (t *Tracker) TransitionCounts() map[trace.DiagramKey]uint64 {
	out := map[trace.DiagramKey]uint64{}
	for from := range t.counts {
		for to := range t.counts[from] {
			for c, n := range t.counts[from][to] {
				if n == 0 {
					continue
				}
				f, tt := tcp.State(from), tcp.State(to)
				trig, _ := trace.ParseCause(f, tt, causeID(c).String())
				out[trace.DiagramKey{From: f, To: tt, Trigger: trig}] += n
			}
		}
	}
	return out
}

// Prune forgets connections that ended, and whose middlebox entries
// expired, before at less keep; a live tracker calls it now and then to
// stay bounded.
func (t *Tracker) Prune(at time.Time, keep time.Duration) {
	out := t.conns[:0]
	now := at.UnixNano()
	for _, r := range t.conns {
		c := t.slab.at(r)
		v := t.view(c, now)
		if v.Ended && v.ConntrackState == "" && v.IPVSState == "" && now-c.lastNanos() > int64(keep) {
			t.forget(r)
			continue
		}
		out = append(out, r)
	}
	t.conns = out
}
