package sim

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// LinkConfig describes one direction of a link. The zero value is a
// perfect link that delivers every packet at once.
type LinkConfig struct {
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter adds a random delay, uniform in [0, Jitter), to each packet.
	// Packets still arrive in the order they were sent, unless Reorder
	// says otherwise.
	Jitter time.Duration
	// Rate is the link's speed in bytes per second; each packet takes
	// len/Rate to serialize, and packets queue behind each other. Zero is
	// infinitely fast.
	Rate int64
	// QueueLimit is how many packets may wait to be serialized; a packet
	// arriving at a full queue is dropped (tail drop). Zero is unlimited.
	// It only matters with a Rate.
	QueueLimit int

	// Loss is the probability that a packet is lost.
	Loss float64
	// Duplicate is the probability that a packet is delivered twice.
	Duplicate float64
	// Reorder is the probability that a packet is held back ReorderDelay
	// beyond its normal arrival, so later packets overtake it.
	Reorder float64
	// ReorderDelay is how long a reordered packet is held back. Zero means
	// Delay, or a millisecond if Delay is zero too.
	ReorderDelay time.Duration
	// Corrupt is the probability that one byte of a packet's TCP segment
	// is damaged, so that the receiver's checksum check drops it.
	Corrupt float64
}

// Link joins two hosts, with a Direction each way.
type Link struct {
	a, b   *Host
	ab, ba *Direction
}

// Link joins hosts a and b: packets from a to b travel as ab says, those
// from b to a as ba says. Each host sends packets for the other's address
// over this link; the first link a host has is also its default route.
func (w *World) Link(a, b *Host, ab, ba LinkConfig) *Link {
	l := &Link{a: a, b: b}
	l.ab = &Direction{w: w, from: a, to: b, cfg: ab, name: a.name + "->" + b.name}
	l.ba = &Direction{w: w, from: b, to: a, cfg: ba, name: b.name + "->" + a.name}
	a.routes = append(a.routes, l.ab)
	b.routes = append(b.routes, l.ba)
	w.links = append(w.links, l)
	return l
}

// Dir returns the direction of the link that carries from's packets, or
// nil if from is not on the link.
func (l *Link) Dir(from *Host) *Direction {
	switch from {
	case l.a:
		return l.ab
	case l.b:
		return l.ba
	}
	return nil
}

// SetConfig sets both directions' configuration.
func (l *Link) SetConfig(cfg LinkConfig) {
	l.ab.cfg = cfg
	l.ba.cfg = cfg
}

// PacketInfo describes a packet for filters: who sent it where, when, and
// the TCP segment it carries.
type PacketInfo struct {
	// ID is the packet's number in the World, as records' Pkt carry it.
	ID uint64
	// N counts the packets sent in this direction, this one included
	// (1 for the first).
	N int
	// T is when it was sent, since the start.
	T time.Duration
	// Src and Dst are the sending and receiving sockets.
	Src, Dst netip.AddrPort
	// Seg summarizes the segment: flags, seq, ack, window, payload length.
	Seg tcp.SegmentInfo
}

// Direction is one way of a link: its configuration, scripted filters
// and the state of its queue.
type Direction struct {
	w        *World
	from, to *Host
	name     string
	cfg      LinkConfig
	filters  []filter
	n        int
	busy     time.Duration   // when the transmitter is free
	last     time.Duration   // latest in-order arrival time
	inQueue  []time.Duration // serialization end times of queued packets
}

type filter struct {
	match func(PacketInfo) bool
	drop  bool
	delay time.Duration
	why   string
}

// Name returns "from->to" with the hosts' names.
func (d *Direction) Name() string { return d.name }

// Config returns the direction's configuration.
func (d *Direction) Config() LinkConfig { return d.cfg }

// SetConfig changes the direction's configuration from now on.
func (d *Direction) SetConfig(cfg LinkConfig) { d.cfg = cfg }

// DropIf drops every packet for which match returns true, before any
// random impairment. Filters run in the order they were added; see Nth to
// drop only one packet. why, if not empty, explains the drop in the
// ladder diagram.
func (d *Direction) DropIf(match func(PacketInfo) bool, why string) {
	d.filters = append(d.filters, filter{match: match, drop: true, why: why})
}

// DelayIf holds back every packet for which match returns true by extra
// beyond its normal arrival, so later packets may overtake it. why, if
// not empty, explains it in the ladder diagram.
func (d *Direction) DelayIf(match func(PacketInfo) bool, extra time.Duration, why string) {
	d.filters = append(d.filters, filter{match: match, delay: extra, why: why})
}

// Nth returns a match function that is true only for the n-th packet
// (counting from 1) for which match is true.
func Nth(n int, match func(PacketInfo) bool) func(PacketInfo) bool {
	seen := 0
	return func(p PacketInfo) bool {
		if !match(p) {
			return false
		}
		seen++
		return seen == n
	}
}

// Flags returns a match function true for segments whose control bits are
// exactly f (PSH aside, so "ACK" matches data segments too).
func Flags(f header.TCPFlags) func(PacketInfo) bool {
	return func(p PacketInfo) bool { return p.Seg.Flags&^header.PSH == f&^header.PSH }
}

// Any is a match function true for every packet.
func Any(PacketInfo) bool { return true }

// send puts a packet on the link: filters, random impairments, queueing
// and delay decide when, or whether, it arrives.
func (d *Direction) send(p *packet) {
	w := d.w
	w.Stats.Sent++
	d.n++
	p.info.N = d.n
	p.to = d.to
	var extra time.Duration
	for i := range d.filters {
		f := &d.filters[i]
		if !f.match(p.info) {
			continue
		}
		if f.drop {
			w.Stats.Filtered++
			d.record(trace.KindFiltered, p, f.why)
			w.drop(p)
			return
		}
		w.Stats.Delayed++
		extra += f.delay
		why := f.why
		if why == "" {
			why = "held back " + f.delay.String()
		}
		d.record(trace.KindDelayed, p, why)
	}
	cfg := &d.cfg
	if cfg.Loss > 0 && w.rng.Float64() < cfg.Loss {
		w.Stats.Lost++
		d.record(trace.KindLost, p, "")
		w.drop(p)
		return
	}
	now := w.now
	start := max(now, d.busy)
	if cfg.QueueLimit > 0 {
		k := 0
		for k < len(d.inQueue) && d.inQueue[k] <= now {
			k++
		}
		d.inQueue = d.inQueue[k:]
		if len(d.inQueue) >= cfg.QueueLimit {
			w.Stats.QueueDrops++
			d.record(trace.KindQueueFull, p, "")
			w.drop(p)
			return
		}
	}
	var tx time.Duration
	if cfg.Rate > 0 {
		tx = time.Duration(int64(len(p.buf)) * int64(time.Second) / cfg.Rate)
	}
	d.busy = start + tx
	if cfg.QueueLimit > 0 {
		d.inQueue = append(d.inQueue, d.busy)
	}
	at := d.busy + cfg.Delay
	if cfg.Jitter > 0 {
		at += time.Duration(w.rng.Int64N(int64(cfg.Jitter)))
	}
	at = max(at, d.last) // jitter alone does not reorder
	d.last = at
	if cfg.Reorder > 0 && w.rng.Float64() < cfg.Reorder {
		hold := cfg.ReorderDelay
		if hold <= 0 {
			hold = max(cfg.Delay, time.Millisecond)
		}
		at += hold
		w.Stats.Reordered++
		d.record(trace.KindReordered, p, hold.String())
	}
	at += extra
	if cfg.Corrupt > 0 && w.rng.Float64() < cfg.Corrupt {
		d.corrupt(p)
		w.Stats.Corrupted++
		d.record(trace.KindCorrupted, p, "")
	}
	if cfg.Duplicate > 0 && w.rng.Float64() < cfg.Duplicate {
		dup := w.packet()
		*dup = *p
		dup.buf = append(w.buf(len(p.buf))[:0], p.buf...)
		w.Stats.Duplicated++
		d.record(trace.KindDuplicated, p, "")
		w.push(event{at: at, kind: evDeliver, pkt: p})
		w.push(event{at: at, kind: evDeliver, pkt: dup})
		return
	}
	w.push(event{at: at, kind: evDeliver, pkt: p})
}

// corrupt flips bits of one byte of the TCP segment, avoiding the data
// offset byte so the damage shows as a checksum failure rather than a
// malformed header. The TCP checksum catches every single-byte change.
func (d *Direction) corrupt(p *packet) {
	ipLen := 20
	if p.buf[0]>>4 == 6 {
		ipLen = 40
	}
	segLen := len(p.buf) - ipLen
	if segLen <= 0 {
		return
	}
	off := d.w.rng.IntN(segLen - 1)
	if off >= 12 {
		off++ // skip the data offset byte
	}
	p.buf[ipLen+off] ^= byte(1 + d.w.rng.IntN(255))
}

func (d *Direction) record(k trace.Kind, p *packet, text string) {
	if d.w.sink == nil {
		return
	}
	d.w.emit(&trace.Record{
		T: d.w.now, Host: d.from.name, Conn: tcp.Tuple{Local: p.info.Src, Remote: p.info.Dst},
		Kind: k, Pkt: p.id, HasSeg: true, Seg: p.info.Seg, Link: d.name, Text: text,
	})
}

// packet is an IP packet in flight.
type packet struct {
	id   uint64
	buf  []byte
	from *Host
	to   *Host
	info PacketInfo
	opts string // the segment's options as trace writes them; traced runs only
}

// String describes the packet for debugging.
func (p *packet) String() string {
	return fmt.Sprintf("#%d %v->%v %v", p.id, p.info.Src, p.info.Dst, p.info.Seg)
}
