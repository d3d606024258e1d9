package track

import (
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
	// Keep, when set, selects connections (by client and server, or
	// either order) whose packets and transitions are kept for Records.
	Keep func(a, b netip.AddrPort) bool
}

// flowKey is the unordered 4-tuple: a is the lesser address:port.
type flowKey struct{ a, b netip.AddrPort }

func keyOf(src, dst netip.AddrPort) flowKey {
	if src.Compare(dst) <= 0 {
		return flowKey{src, dst}
	}
	return flowKey{dst, src}
}

// flow is everything kept per 4-tuple: the current connection and the
// middlebox entries, which belong to the tuple rather than to one
// incarnation (conntrack and IPVS reuse them when a connection reopens).
type flow struct {
	cur     *Conn
	ct      *conntrack.Entry
	ctFirst netip.AddrPort // source of the packet that created ct (its Original)
	vs      *ipvs.Entry
}

// span is a range of sequence space seen, [lo, hi).
type span struct{ lo, hi seqnum.Value }

// maxSpans bounds the ranges kept per direction; past it the two closest
// are merged (a hole forgotten: a later segment filling it counts as a
// retransmission).
const maxSpans = 16

// dirStats is what the tracker counts for one direction.
type dirStats struct {
	isn            seqnum.Value
	isnSeen        bool
	end            seqnum.Value // highest seq end seen
	endSeen        bool
	fin            seqnum.Value
	finSeen        bool
	finT           time.Time
	maxAck         seqnum.Value
	ackSeen        bool
	win            uint16
	ws             int8 // window scale offered in the SYN, -1 none
	zeroWin        uint64
	packets, bytes uint64
	retrans        uint64
	rsts           uint64
	lastData       bool         // the last packet this way carried payload
	lastAck        seqnum.Value // its ACK field
	halfOpen       bool         // answered the peer's data with a bare RST
	spans          []span
	lastT          time.Time
}

// Conn is one connection (one incarnation on its 4-tuple).
type Conn struct {
	// Client and Server are the endpoints (see the package comment).
	Client, Server netip.AddrPort
	// First and Last are when its first and last packets were seen.
	First, Last time.Time
	// MidStream is set when the connection's start was not captured.
	MidStream bool

	fl         *flow
	superseded bool
	ep         [2]endpoint
	dir        [2]dirStats
	zk         *zeek.Flow
	zkFirst    netip.AddrPort
	keep       bool
	pkts       []pktLog
	trans      [2][]transition
	lost       []int // packets whose loss a retransmission revealed
	held       [2][]held
	inEnd      [2]seqnum.Value // highest sequence end of the packets inferred, per direction
	inSet      [2]bool
	order      []int // kept connections: packet indexes in the order inferred
	npkt       int
	cur        int // the packet being processed, -1 after Finish
}

// pktLog is one packet of a kept connection.
type pktLog struct {
	t       time.Time
	d       int
	seg     tcp.SegmentInfo
	opts    string
	retrans bool
}

// causeKey names a counted transition before its trigger is classified.
type causeKey struct {
	from, to tcp.State
	cause    string
}

// Tracker follows every TCP connection in a stream of packets.
type Tracker struct {
	cfg         Config
	flows       map[flowKey]*flow
	conns       []*Conn
	first, last time.Time
	packets     uint64
	counts      map[causeKey]uint64
}

// New returns an empty Tracker.
func New(cfg Config) *Tracker {
	if cfg.TimeWait <= 0 {
		cfg.TimeWait = DefaultTimeWait
	}
	return &Tracker{cfg: cfg, flows: map[flowKey]*flow{}, counts: map[causeKey]uint64{}}
}

// First and Last are the timestamps of the first and the latest packet
// fed; zero before any.
func (t *Tracker) First() time.Time { return t.first }

// Last: see First.
func (t *Tracker) Last() time.Time { return t.last }

// Packets is the number of packets fed.
func (t *Tracker) Packets() uint64 { return t.packets }

// Conns returns every connection seen, in order of first packet.
func (t *Tracker) Conns() []*Conn { return t.conns }

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

// Feed processes the next packet. Packets must come in timestamp order;
// the Packet is not retained.
func (t *Tracker) Feed(p *capture.Packet) {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return
	}
	t.packets++
	if t.first.IsZero() {
		t.first = p.T
	}
	if p.T.After(t.last) {
		t.last = p.T
	}
	k := keyOf(p.Src, p.Dst)
	fl := t.flows[k]
	if fl == nil {
		fl = &flow{}
		t.flows[k] = fl
	}
	c := fl.cur
	if c == nil || t.newIncarnation(c, p) {
		if c != nil {
			c.superseded = true
		}
		c = t.newConn(fl, p)
		fl.cur = c
	}
	t.packet(c, p)
}

// newIncarnation reports whether p, arriving on c's tuple, opens a new
// connection: a SYN without ACK that is not a retransmission of c's SYN,
// when c has ended, or when c's receiver is in TIME-WAIT and the SYN's
// sequence number is beyond what the old connection used (RFC 9293
// §3.6.1, RFC 6191; Linux tcp_timewait_state_process).
func (t *Tracker) newIncarnation(c *Conn, p *capture.Packet) bool {
	if p.Flags&(header.SYN|header.ACK|header.RST) != header.SYN {
		return false
	}
	d := c.side(p.Src)
	if c.ep[d].sentSyn && p.Seq == c.ep[d].iss {
		return false
	}
	s0, _ := c.ep[0].believed(p.T, t.cfg.TimeWait)
	s1, _ := c.ep[1].believed(p.T, t.cfg.TimeWait)
	if s0 == tcp.Closed && s1 == tcp.Closed {
		return true
	}
	sr := s1
	if d == 1 {
		sr = s0
	}
	if sr == tcp.TimeWait || sr == tcp.Closed {
		return !c.dir[d].endSeen || p.Seq.GreaterThan(c.dir[d].end)
	}
	return false
}

func (c *Conn) side(src netip.AddrPort) int {
	if src == c.Client {
		return 0
	}
	return 1
}

func (t *Tracker) newConn(fl *flow, p *capture.Packet) *Conn {
	c := &Conn{First: p.T, fl: fl, zk: zeek.New(), zkFirst: p.Src}
	c.dir[0].ws, c.dir[1].ws = -1, -1
	syn, ack := p.Flags.Has(header.SYN), p.Flags.Has(header.ACK)
	switch {
	case syn && !ack:
		c.Client, c.Server = p.Src, p.Dst
		c.ep[1].st = tcp.Listen
	case syn && ack:
		// The SYN was not captured: its sender's state is what the
		// SYN,ACK acknowledges.
		c.Client, c.Server = p.Dst, p.Src
		c.ep[0] = endpoint{st: tcp.SynSent, sentSyn: true, iss: p.Ack - 1}
		c.ep[1].st = tcp.Listen
		c.dir[0].isn, c.dir[0].isnSeen = p.Ack-1, true
	default:
		c.MidStream = true
		c.Client, c.Server = p.Src, p.Dst
		if p.Dst.Port() > p.Src.Port() {
			c.Client, c.Server = p.Dst, p.Src
		}
		for i := range c.ep {
			c.ep[i] = endpoint{st: tcp.Established, sentSyn: true, synAcked: true, rcvSyn: true}
		}
	}
	c.ep[0].initial, c.ep[1].initial = c.ep[0].st, c.ep[1].st
	if t.cfg.Keep != nil && t.cfg.Keep(c.Client, c.Server) {
		c.keep = true
	}
	t.conns = append(t.conns, c)
	return c
}

// recorder returns the function that commits side d's transitions.
func (t *Tracker) recorder(c *Conn, d int) recorder {
	return func(tr transition) {
		t.counts[causeKey{tr.from, tr.to, tr.cause}]++
		if c.keep {
			tr.at = c.cur
			c.trans[d] = append(c.trans[d], tr)
		}
	}
}

// expire commits TIME-WAIT's end for endpoints whose timer ran out
// before now.
func (t *Tracker) expire(c *Conn, now time.Time) {
	for d := range c.ep {
		e := &c.ep[d]
		if e.st == tcp.TimeWait {
			if end := e.twStart.Add(t.cfg.TimeWait); !now.Before(end) {
				e.set(tcp.Closed, "timeout 2MSL", end, -1, false, t.recorder(c, d))
			}
		}
	}
}

func (t *Tracker) packet(c *Conn, p *capture.Packet) {
	d := c.side(p.Src)
	if p.Src == p.Dst {
		d = c.npkt % 2 // a packet to itself (land attack): alternate
	}
	c.Last = p.T
	idx := c.npkt
	c.npkt++
	c.cur = idx
	retrans := t.count(c, d, p)
	t.middleboxes(c, d, p)
	t.expire(c, p.T)
	if c.keep {
		c.pkts = append(c.pkts, pktLog{t: p.T, d: d, retrans: retrans, opts: trace.FormatOptions(&p.Options),
			seg: tcp.SegmentInfo{Seq: p.Seq, Ack: p.Ack, Flags: p.Flags, Window: p.Window, Len: max(p.PayloadLen, 0)}})
	}
	t.order(c, d, p, idx)
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
func (t *Tracker) order(c *Conn, d int, p *capture.Packet, idx int) {
	t.release(c, p.T, false)
	end := segEnd(p)
	switch {
	case p.Flags.Has(header.RST) || p.Flags.Has(header.SYN) || !c.inSet[d]:
		// An RST's sequence number is not a position in the stream; a
		// SYN starts it.
	case p.Seq.GreaterThan(c.inEnd[d]):
		if len(c.held[d]) < maxHeld {
			c.held[d] = append(c.held[d], held{*p, idx})
			return
		}
	}
	t.inferInOrder(c, d, p, idx, end)
	// Release the held packets the hole no longer separates.
	for {
		k := -1
		for i := range c.held[d] {
			if c.held[d][i].p.Seq.LessThanEq(c.inEnd[d]) {
				k = i
				break
			}
		}
		if k < 0 {
			return
		}
		h := c.held[d][k]
		c.held[d] = append(c.held[d][:k], c.held[d][k+1:]...)
		t.inferInOrder(c, d, &h.p, h.idx, segEnd(&h.p))
	}
}

// release runs the inference of held packets older than holdMax at now
// (all of them when all is set), oldest first.
func (t *Tracker) release(c *Conn, now time.Time, all bool) {
	for d := range c.held {
		for len(c.held[d]) > 0 && (all || now.Sub(c.held[d][0].p.T) >= holdMax) {
			h := c.held[d][0]
			c.held[d] = c.held[d][1:]
			t.inferInOrder(c, d, &h.p, h.idx, segEnd(&h.p))
		}
		if len(c.held[d]) == 0 {
			c.held[d] = nil
		}
	}
}

func (t *Tracker) inferInOrder(c *Conn, d int, p *capture.Packet, idx int, end seqnum.Value) {
	if !p.Flags.Has(header.RST) && (!c.inSet[d] || end.GreaterThan(c.inEnd[d])) {
		c.inEnd[d], c.inSet[d] = end, true
	}
	saved := c.cur
	c.cur = idx
	if c.keep {
		c.order = append(c.order, idx)
	}
	t.infer(c, d, p, idx)
	c.cur = saved
}

// count updates direction d's counters and reports whether p is a
// retransmission.
func (t *Tracker) count(c *Conn, d int, p *capture.Packet) bool {
	ds := &c.dir[d]
	ds.packets++
	n := max(p.PayloadLen, 0)
	ds.bytes += uint64(n)
	ds.lastT = p.T
	f := p.Flags
	if f.Has(header.SYN) {
		if !ds.isnSeen {
			ds.isn, ds.isnSeen = p.Seq, true
		}
		if p.Options.HasWindowScale {
			ds.ws = int8(min(p.Options.WindowScale, 14)) // RFC 7323 §2.3: at most 14
		}
	}
	if f.Has(header.ACK) && (!ds.ackSeen || p.Ack.GreaterThan(ds.maxAck)) {
		ds.maxAck, ds.ackSeen = p.Ack, true
	}
	if !f.Has(header.RST) {
		ds.win = p.Window
		if p.Window == 0 && !f.Has(header.SYN) {
			ds.zeroWin++
		}
	}
	if f.Has(header.RST) {
		ds.rsts++
		peer := &c.dir[1-d]
		// RFC 9293 §3.10.7.1: a host with no connection answers a
		// segment carrying an ACK with an RST whose sequence number is
		// that ACK, and no ACK of its own.
		if !f.Has(header.ACK) && peer.lastData && p.Seq == peer.lastAck && !c.ep[d].sentFin {
			ds.halfOpen = true
		}
	}
	ds.lastData, ds.lastAck = n > 0, p.Ack
	end := segEnd(p)
	if f.Has(header.FIN) {
		ds.fin, ds.finSeen, ds.finT = end-1, true, p.T
	}
	if end == p.Seq || f.Has(header.RST) {
		return false
	}
	retrans := ds.addSpan(span{p.Seq, end})
	if !ds.endSeen || end.GreaterThan(ds.end) {
		ds.end, ds.endSeen = end, true
	}
	if retrans {
		ds.retrans++
	}
	return retrans
}

// addSpan records s as seen and reports whether it overlapped space seen
// before.
func (ds *dirStats) addSpan(s span) bool {
	overlap := false
	for _, o := range ds.spans {
		if s.lo.LessThan(o.hi) && o.lo.LessThan(s.hi) {
			overlap = true
			break
		}
	}
	// Insert in order and merge touching or overlapping spans.
	out := ds.spans[:0:0]
	if cap(ds.spans) > 0 {
		out = make([]span, 0, len(ds.spans)+1)
	}
	placed := false
	for _, o := range ds.spans {
		if !placed && s.lo.LessThan(o.lo) {
			out = append(out, s)
			placed = true
		}
		out = append(out, o)
	}
	if !placed {
		out = append(out, s)
	}
	merged := out[:1]
	for _, o := range out[1:] {
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
	ds.spans = merged
	return overlap
}

// middleboxes feeds p to the conntrack, IPVS and Zeek models.
func (t *Tracker) middleboxes(c *Conn, d int, p *capture.Packet) {
	fl := c.fl
	n := max(p.PayloadLen, 0)
	cp := conntrack.Packet{T: p.T, Flags: p.Flags, Seq: p.Seq, Ack: p.Ack, Len: n, Window: p.Window}
	if fl.ct == nil {
		if e, ok := conntrack.New(cp); ok {
			fl.ct, fl.ctFirst = e, p.Src
		}
	} else {
		if p.Src != fl.ctFirst {
			cp.Dir = conntrack.Reply
		}
		fl.ct.Update(cp)
	}
	vp := ipvs.Packet{T: p.T, Flags: p.Flags, Dir: ipvs.FromClient}
	if d == 1 {
		vp.Dir = ipvs.FromServer
	}
	if fl.vs == nil {
		if e, ok := ipvs.New(vp, t.cfg.IPVSMode); ok {
			fl.vs = e
		}
	} else {
		fl.vs.Update(vp)
	}
	zp := zeek.Packet{Flags: p.Flags, Seq: p.Seq, Ack: p.Ack, Len: n, Window: p.Window,
		SrcPort: p.Src.Port(), DstPort: p.Dst.Port()}
	if p.Src != c.zkFirst {
		zp.Dir = zeek.Backward
	}
	c.zk.Packet(zp)
}

// infer runs the endpoint state model for p, sent by side d.
func (t *Tracker) infer(c *Conn, d int, p *capture.Packet, idx int) {
	s, r := &c.ep[d], &c.ep[1-d]
	f := p.Flags
	recS, recR := t.recorder(c, d), t.recorder(c, 1-d)
	n := seqnum.Size(max(p.PayloadLen, 0))

	// What p shows its sender had received: the pending deliveries its
	// ACK covers, and those before them (TCP delivers in order).
	last := -1
	for i := range s.pend {
		if s.proves(&s.pend[i], f, p.Ack) {
			last = i
		}
	}
	// New sequence space from a SYN-RECEIVED endpoint shows it got the
	// ACK of its SYN,ACK.
	if s.st == tcp.SynReceived && s.sentSyn && !f.Has(header.SYN) && !f.Has(header.RST) &&
		(n > 0 || f.Has(header.FIN)) && p.Seq.GreaterThanEq(s.iss.Add(1)) {
		for i := range s.pend {
			if !s.pend[i].occupies() && s.pend[i].flags.Has(header.ACK) && s.pend[i].ack.GreaterThanEq(s.iss.Add(1)) {
				last = max(last, i)
			}
		}
	}
	if last >= 0 {
		s.deliver(last, recS)
	}

	// What a retransmission reveals: the peer's ACK of what is resent
	// never arrived.
	var lost []int
	switch {
	case f.Has(header.SYN) && s.sentSyn && p.Seq == s.iss:
		lost = s.drop(s.iss.Add(1))
	case f.Has(header.FIN) && s.sentFin && p.Seq.Add(n) == s.finSeq:
		lost = s.drop(s.finSeq.Add(1))
	}
	if c.keep {
		c.lost = append(c.lost, lost...)
	}

	// What sending p means for its sender.
	switch {
	case f.Has(header.RST):
		s.sentRst = true
		if s.st == tcp.Listen && !s.sentSyn {
			// Refused: no socket listened, so it never was in LISTEN
			// (RFC 9293 §3.10.7.1).
			s.st, s.initial = tcp.Closed, tcp.Closed
		} else {
			s.set(tcp.Closed, "ABORT", p.T, idx, true, recS)
		}
		s.pend = s.pend[:0]
	case f.Has(header.SYN):
		if !s.sentSyn {
			s.sentSyn, s.iss = true, p.Seq
		}
		if f.Has(header.ACK) {
			if s.st == tcp.Listen || s.st == tcp.Closed {
				s.rcvSyn = true
				s.set(tcp.SynReceived, "rcv SYN", p.T, idx, false, recS)
			}
		} else {
			switch s.st {
			case tcp.Closed:
				s.set(tcp.SynSent, "active OPEN", p.T, idx, true, recS)
			case tcp.Listen:
				// The side taken for a listener opens actively too:
				// a simultaneous open, so it was CLOSED, not LISTEN.
				s.st, s.initial = tcp.Closed, tcp.Closed
				s.set(tcp.SynSent, "active OPEN", p.T, idx, true, recS)
			}
		}
	}
	if f.Has(header.FIN) && !f.Has(header.RST) && !(s.sentFin && p.Seq.Add(n) == s.finSeq) {
		s.sentFin, s.finSeq, s.finAcked = true, p.Seq.Add(n), false
		switch s.st {
		case tcp.Established, tcp.SynReceived:
			s.set(tcp.FinWait1, "CLOSE", p.T, idx, true, recS)
		case tcp.CloseWait:
			s.set(tcp.LastAck, "CLOSE", p.T, idx, true, recS)
		}
	}

	// What p means for its receiver, once it arrives.
	it := item{flags: f, seq: p.Seq, ack: p.Ack, t: p.T, pkt: idx}
	if f.Has(header.FIN) {
		it.seq = p.Seq.Add(n)
	}
	switch {
	case f.Has(header.RST):
		// An RST is not acknowledged, so its delivery can never be
		// proven: it is taken as delivered.
		r.receive(it, recR)
		if r.st == tcp.Closed {
			r.pend = r.pend[:0]
		}
	case r.relevant(f, p.Ack):
		if len(r.pend) > 0 && !it.occupies() {
			prev := &r.pend[len(r.pend)-1]
			if !prev.occupies() && prev.flags == it.flags && prev.ack == it.ack {
				return // a duplicate of a pending ACK
			}
		}
		r.pend = append(r.pend, it)
		if len(r.pend) > maxPending {
			r.deliver(0, recR)
		}
	}
}

// Finish commits every pending delivery as if it arrived, and the
// TIME-WAIT expiries due by at, so that the transition counts and the
// kept records are complete. Call it once, after the last Feed.
func (t *Tracker) Finish(at time.Time) {
	for _, c := range t.conns {
		t.release(c, at, true)
		c.cur = -1
		for d := range c.ep {
			c.ep[d].deliver(len(c.ep[d].pend)-1, t.recorder(c, d))
		}
		t.expire(c, at)
	}
}

// TransitionCounts returns the committed state changes of every endpoint,
// keyed by diagram edge, for trace.DiagramSVG and trace.DiagramDOT.
func (t *Tracker) TransitionCounts() map[trace.DiagramKey]uint64 {
	out := map[trace.DiagramKey]uint64{}
	for k, n := range t.counts {
		trig, _ := trace.ParseCause(k.from, k.to, k.cause)
		out[trace.DiagramKey{From: k.from, To: k.to, Trigger: trig}] += n
	}
	return out
}

// Prune forgets connections that ended, and whose middlebox entries
// expired, before at less keep; a live tracker calls it now and then to
// stay bounded.
func (t *Tracker) Prune(at time.Time, keep time.Duration) {
	out := t.conns[:0]
	for _, c := range t.conns {
		v := t.view(c, at)
		if v.Ended && v.ConntrackState == "" && v.IPVSState == "" && at.Sub(c.Last) > keep {
			if c.fl.cur == c {
				delete(t.flows, keyOf(c.Client, c.Server))
			}
			continue
		}
		out = append(out, c)
	}
	clear(t.conns[len(out):])
	t.conns = out
}
