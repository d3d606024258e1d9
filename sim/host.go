package sim

import (
	"errors"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// FirstEphemeralPort is where a host starts choosing local ports for Dial
// (the IANA dynamic range, RFC 6335).
const FirstEphemeralPort = 49152

// ttl is the IPv4 TTL or IPv6 hop limit of every packet a host sends.
const ttl = 64

// Host is a machine in the World: one address, a tcp.Config for its
// connections, listening ports, and its connections demultiplexed by
// tuple. It is the tcp.Output of its connections: what they send it
// builds into real packets and hands to the link towards the destination.
type Host struct {
	w    *World
	name string
	addr netip.Addr
	cfg  tcp.Config
	obs  tcp.Observer // the caller's Config.Observer

	routes    []*Direction
	listening map[uint16]bool
	conns     []*Conn // every connection, in creation order
	demux     map[tcp.Tuple]*Conn
	ports     map[uint16]int // live connections per local port
	nextPort  uint16
	iss       []seqnum.Value
	onAccept  func(*Conn)

	// What the current step produced, paired up and sent by flush.
	recs   []trace.Record
	sends  []*packet
	curPkt uint64
	curSeg *tcp.Segment // the segment being delivered, for its options
	rseg   tcp.Segment  // scratch for the segment being delivered
	rbuf   []byte
	wbuf   []byte
}

// ErrPortInUse is returned by DialFrom when the tuple is taken.
var ErrPortInUse = errors.New("sim: connection tuple already in use")

// NewHost adds a host named name (used in traces and diagrams) with
// address addr, IPv4 or IPv6. Its connections use a copy of cfg; if
// cfg.Observer is set it sees their events too.
func (w *World) NewHost(name string, addr netip.Addr, cfg tcp.Config) *Host {
	h := &Host{
		w: w, name: name, addr: addr, obs: cfg.Observer,
		listening: map[uint16]bool{},
		demux:     map[tcp.Tuple]*Conn{},
		ports:     map[uint16]int{},
		nextPort:  FirstEphemeralPort,
	}
	h.cfg = cfg
	h.cfg.Observer = nil // set per connection, see newConn
	w.hosts = append(w.hosts, h)
	if w.sink != nil {
		w.emit(&trace.Record{T: w.now, Host: name, Addr: addr, Kind: trace.KindHost})
	}
	return h
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Addr returns the host's address.
func (h *Host) Addr() netip.Addr { return h.addr }

// AddrPort returns the host's address with port.
func (h *Host) AddrPort(port uint16) netip.AddrPort { return netip.AddrPortFrom(h.addr, port) }

// Config returns the host's connection configuration. Changing it affects
// connections created afterwards and, for fields read on use, existing
// ones.
func (h *Host) Config() *tcp.Config { return &h.cfg }

// Listen makes the host accept connections on port: an arriving SYN for
// it with no connection of its own gets a new connection, passively
// opened.
func (h *Host) Listen(port uint16) {
	h.listening[port] = true
	if h.w.sink != nil {
		h.w.emit(&trace.Record{T: h.w.now, Host: h.name, Conn: tcp.Tuple{Local: h.AddrPort(port)}, Kind: trace.KindListen})
	}
}

// Unlisten stops accepting connections on port; existing ones go on.
func (h *Host) Unlisten(port uint16) { delete(h.listening, port) }

// OnAccept sets a function called with each connection a listener
// creates, once the SYN that created it has been processed.
func (h *Host) OnAccept(f func(*Conn)) { h.onAccept = f }

// SetISS queues initial sequence numbers for the host's next connections,
// active or passive, in order. Once they are used up, ISNs come from the
// World's random source.
func (h *Host) SetISS(iss ...seqnum.Value) { h.iss = append(h.iss, iss...) }

func (h *Host) nextISS() seqnum.Value {
	if len(h.iss) > 0 {
		v := h.iss[0]
		h.iss = h.iss[1:]
		return v
	}
	return seqnum.Value(h.w.rng.Uint32())
}

// Conns returns every connection the host has had, in creation order,
// closed ones included.
func (h *Host) Conns() []*Conn { return h.conns }

// Lookup returns the live connection with tuple id (as the host sees it),
// or nil.
func (h *Host) Lookup(id tcp.Tuple) *Conn { return h.demux[id] }

// Dial opens a connection to remote from an ephemeral port (an active
// OPEN): the SYN leaves now.
func (h *Host) Dial(remote netip.AddrPort) (*Conn, error) { return h.DialFrom(0, remote) }

// DialFrom is Dial from a given local port; zero picks an ephemeral one.
func (h *Host) DialFrom(port uint16, remote netip.AddrPort) (*Conn, error) {
	if port == 0 {
		port = h.ephemeralPort()
	}
	id := tcp.Tuple{Local: h.AddrPort(port), Remote: remote}
	if h.demux[id] != nil {
		return nil, ErrPortInUse
	}
	c := h.newConn(id, false)
	var err error
	iss := h.nextISS()
	h.call(c, func(now time.Time) { err = c.tc.Connect(now, iss) })
	return c, err
}

// ephemeralPort picks the next local port with no live connection,
// counting up from FirstEphemeralPort and wrapping.
func (h *Host) ephemeralPort() uint16 {
	for range 65536 - FirstEphemeralPort {
		p := h.nextPort
		h.nextPort++
		if h.nextPort == 0 {
			h.nextPort = FirstEphemeralPort
		}
		if h.ports[p] == 0 && !h.listening[p] {
			return p
		}
	}
	return h.nextPort
}

func (h *Host) newConn(id tcp.Tuple, passive bool) *Conn {
	c := &Conn{host: h, passive: passive, autoRead: true}
	c.tc = tcp.NewConn(id, &h.cfg, h)
	c.tc.SetUserData(c)
	if h.w.sink != nil || h.obs != nil || h.w.tap != nil {
		c.tc.SetObserver(h)
	} else {
		c.tc.SetObserver(nil)
	}
	h.conns = append(h.conns, c)
	h.demux[id] = c
	h.ports[id.Local.Port()]++
	return c
}

// call runs one user call on c as a step of its own.
func (h *Host) call(c *Conn, f func(now time.Time)) {
	h.w.step++
	f(h.w.Now())
	h.settle(c)
}

// fireTimer runs c's due timers as a step.
func (h *Host) fireTimer(c *Conn) {
	h.call(c, c.tc.HandleTimeout)
}

// settle finishes a step on c: the application model reads and writes,
// what was produced goes out, the timer is rescheduled, a finished
// connection leaves the demultiplexer, and state watchers hear of changes.
func (h *Host) settle(c *Conn) {
	if c != nil {
		c.pump(h.w.Now())
	}
	h.flush()
	if c == nil {
		return
	}
	st := c.tc.State()
	if st == tcp.Closed || (c.passive && st == tcp.Listen) {
		// CLOSED: the TCB is gone. LISTEN: a passively opened connection
		// reset back to LISTEN is the listener's business again.
		h.remove(c)
	} else {
		c.reschedule()
	}
	if st != c.last {
		from := c.last
		c.last = st
		if c.onState != nil {
			c.onState(c, from, st)
		}
	}
}

func (h *Host) remove(c *Conn) {
	if c.removed {
		return
	}
	c.removed = true
	c.timerArmed = false
	id := c.tc.ID()
	if h.demux[id] == c {
		delete(h.demux, id)
	}
	h.ports[id.Local.Port()]--
}

// Observe implements tcp.Observer for the host's connections: it turns
// their events into records for the World's sink.
func (h *Host) Observe(e *tcp.Event) {
	if h.obs != nil {
		h.obs.Observe(e)
	}
	if t := h.w.tap; t != nil {
		t.Event(h, h.demux[e.Conn], e)
	}
	if h.w.sink == nil {
		return
	}
	r := trace.FromEvent(e, Epoch, h.name)
	switch e.Type {
	case tcp.EventSegmentIn, tcp.EventDrop:
		r.Pkt = h.curPkt
		if e.Type == tcp.EventSegmentIn && h.curSeg != nil {
			r.Opts = trace.FormatOptions(&h.curSeg.Options)
		}
	}
	h.recs = append(h.recs, r)
}

// Send implements tcp.Output: it builds the segment into an IP packet,
// which goes on the link when the current step ends.
func (h *Host) Send(c *tcp.Conn, seg *tcp.Segment) {
	id := c.ID()
	if t := h.w.tap; t != nil {
		sc, _ := c.UserData().(*Conn)
		t.Sent(h, sc, seg)
	}
	if p := h.build(id.Local, id.Remote, seg); p != nil {
		h.sends = append(h.sends, p)
	}
}

// build makes a packet of seg from src to dst, or nil if it cannot be
// built (counted as a bad packet).
func (h *Host) build(src, dst netip.AddrPort, seg *tcp.Segment) *packet {
	w := h.w
	f := header.TCPFields{
		SrcPort: src.Port(), DstPort: dst.Port(),
		Seq: seg.Seq, Ack: seg.Ack, Flags: seg.Flags,
		Window: seg.Window, Urgent: seg.Urgent,
	}
	buf := w.buf(header.IPv6MinLen + header.TCPMaxLen + len(seg.Payload))
	n, err := header.BuildPacket(buf, src.Addr(), dst.Addr(), ttl, &f, &seg.Options, seg.Payload)
	if err != nil {
		w.release(buf)
		w.Stats.BadPackets++
		if w.sink != nil {
			w.emit(&trace.Record{T: w.now, Host: h.name, Conn: tcp.Tuple{Local: src, Remote: dst},
				Kind: trace.KindBadPacket, HasSeg: true, Seg: seg.Info(), Text: err.Error()})
		}
		return nil
	}
	w.pktID++
	p := w.packet()
	*p = packet{
		id: w.pktID, buf: buf[:n], from: h,
		info: PacketInfo{ID: w.pktID, T: w.now, Src: src, Dst: dst, Seg: seg.Info()},
	}
	if w.sink != nil {
		p.opts = trace.FormatOptions(&seg.Options)
	}
	return p
}

// flush emits the step's records and puts its packets on the wire, each
// packet right after the record of the segment it carries, so the link's
// verdict on it follows in the trace.
func (h *Host) flush() {
	k := 0
	for i := range h.recs {
		r := &h.recs[i]
		if (r.Kind == trace.KindSegmentOut || r.Kind == trace.KindInject) && k < len(h.sends) {
			r.Pkt = h.sends[k].id
			r.Opts = h.sends[k].opts
			h.w.emit(r)
			h.transmit(h.sends[k])
			k++
			continue
		}
		h.w.emit(r)
	}
	for ; k < len(h.sends); k++ {
		h.transmit(h.sends[k])
	}
	clear(h.recs)
	h.recs = h.recs[:0]
	clear(h.sends)
	h.sends = h.sends[:0]
}

// transmit hands p to the link towards its destination: the link to the
// host that has the address, else the first link (the default route).
func (h *Host) transmit(p *packet) {
	dst := p.info.Dst.Addr()
	for _, d := range h.routes {
		if d.to.addr == dst {
			d.send(p)
			return
		}
	}
	if len(h.routes) > 0 {
		h.routes[0].send(p)
		return
	}
	w := h.w
	w.Stats.NoRoute++
	if w.sink != nil {
		w.emit(&trace.Record{T: w.now, Host: h.name, Conn: tcp.Tuple{Local: p.info.Src, Remote: p.info.Dst},
			Kind: trace.KindNoRoute, Pkt: p.id, HasSeg: true, Seg: p.info.Seg})
	}
	w.drop(p)
}

// Inject puts a crafted segment on the wire from src to dst, as if src
// had sent it: the article's old duplicate SYN, a spoofed RST. src need
// not be the host's own address; the packet leaves on the host's route
// to dst. why, if not empty, explains it in the ladder diagram.
func (h *Host) Inject(src, dst netip.AddrPort, seg *tcp.Segment, why string) {
	w := h.w
	w.step++
	if w.tap != nil {
		w.tap.Sent(h, nil, seg)
	}
	p := h.build(src, dst, seg)
	if p == nil {
		return
	}
	w.Stats.Injected++
	if w.sink != nil {
		h.recs = append(h.recs, trace.Record{T: w.now, Host: h.name, Conn: tcp.Tuple{Local: src, Remote: dst},
			Kind: trace.KindInject, HasSeg: true, Seg: seg.Info(), Text: why})
	}
	h.sends = append(h.sends, p)
	h.flush()
}

// receive is a packet's arrival: parse and check it, find its connection
// or listener, or answer for the host (RFC 9293 §3.10.7.1).
func (h *Host) receive(p *packet) {
	w := h.w
	w.step++
	defer w.drop(p)
	var pk header.Packet
	err := header.ParsePacket(p.buf, &pk)
	// The segment lives in the host, not on the stack: the tap and the
	// trace take its address, and it must not escape to the heap.
	h.rseg = tcp.Segment{}
	seg := &h.rseg
	if err == nil {
		err = pk.TCP.Options(&seg.Options)
	}
	if err != nil {
		w.Stats.BadPackets++
		if w.sink != nil {
			w.emit(&trace.Record{T: w.now, Host: h.name, Conn: tcp.Tuple{Local: p.info.Dst, Remote: p.info.Src},
				Kind: trace.KindBadPacket, Pkt: p.id, HasSeg: true, Seg: p.info.Seg, Text: err.Error()})
		}
		return
	}
	if pk.Dst != h.addr {
		w.Stats.Unreachable++
		if w.sink != nil {
			w.emit(&trace.Record{T: w.now, Host: h.name, Conn: tcp.Tuple{Local: p.info.Dst, Remote: p.info.Src},
				Kind: trace.KindUnreachable, Pkt: p.id, HasSeg: true, Seg: p.info.Seg})
		}
		return
	}
	w.Stats.Delivered++
	t := pk.TCP
	seg.Seq, seg.Ack, seg.Flags = t.Seq(), t.Ack(), t.Flags()
	seg.Window, seg.Urgent, seg.Payload = t.Window(), t.Urgent(), t.Payload()
	id := tcp.Tuple{
		Local:  netip.AddrPortFrom(pk.Dst, t.DstPort()),
		Remote: netip.AddrPortFrom(pk.Src, t.SrcPort()),
	}
	now := w.Now()
	h.curPkt, h.curSeg = p.id, seg
	defer func() { h.curPkt, h.curSeg = 0, nil }()
	if c := h.demux[id]; c != nil {
		if w.tap != nil {
			w.tap.Received(h, c, seg)
		}
		c.tc.Input(now, seg)
		h.settle(c)
		return
	}
	if h.listening[id.Local.Port()] && seg.Flags&(header.SYN|header.ACK|header.RST) == header.SYN {
		c := h.newConn(id, true)
		if err := c.tc.Listen(now, h.nextISS()); err == nil {
			if w.tap != nil {
				w.tap.Received(h, c, seg)
			}
			c.tc.Input(now, seg)
		}
		h.settle(c)
		if h.onAccept != nil && !c.removed {
			h.onAccept(c)
		}
		return
	}
	// No connection: RFC 9293 §3.10.7.1 (the CLOSED state).
	if w.tap != nil {
		w.tap.Received(h, nil, seg)
	}
	if w.sink != nil {
		h.recs = append(h.recs, trace.Record{T: w.now, Host: h.name, Conn: id, Kind: trace.KindSegmentIn,
			Pkt: p.id, HasSeg: true, Seg: seg.Info(), Opts: trace.FormatOptions(&seg.Options)})
	}
	if rst, ok := tcp.ResetFor(seg); ok {
		w.Stats.Resets++
		if w.sink != nil {
			h.recs = append(h.recs, trace.Record{T: w.now, Host: h.name, Conn: id, Kind: trace.KindSegmentOut,
				HasSeg: true, Seg: rst.Info(), Reason: tcp.ReasonResetNoConn.String()})
		}
		if w.tap != nil {
			w.tap.Sent(h, nil, &rst)
		}
		if q := h.build(id.Local, id.Remote, &rst); q != nil {
			h.sends = append(h.sends, q)
		}
	} else if w.sink != nil {
		h.recs = append(h.recs, trace.Record{T: w.now, Host: h.name, Conn: id, Kind: trace.KindDrop,
			Pkt: p.id, HasSeg: true, Seg: seg.Info(), Reason: tcp.ReasonResetNoConn.String()})
	}
	h.flush()
}
