package track

import (
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/track/capture"
)

// batchSize is how many packets the dispatcher hands a worker at once.
const batchSize = 256

// slim is a packet as a worker needs it: what the tracker reads of a
// capture.Packet when no connection is kept for a ladder (the options
// reduced to the window scale).
type slim struct {
	t        int64 // Unix nanoseconds
	id       uint64
	h        uint64 // pairHash of the tuple
	src, dst netip.AddrPort
	seq, ack seqnum.Value
	n        int32
	win      uint16
	flags    header.TCPFlags
	ws       uint8
	hasWS    bool
}

// batch is a run of packets for one worker, or a request (sweep or
// snapshot) once the packets are fed.
type batch struct {
	pkts []slim
	req  request
	at   int64
}

type request uint8

const (
	reqNone request = iota
	reqSweep
	reqSnapshot
	reqStop
)

// result is what a worker answers to a request: the views (with their
// connections' ids) and how many connections it still holds.
type result struct {
	views []ConnView
	ids   []uint64
	held  int
}

type worker struct {
	tr  *Tracker
	in  chan *batch
	out chan result
}

// Sharded follows connections like a Tracker, spread over several
// Trackers by flow hash, each in its own goroutine, so that one big
// capture uses every core. Feed is called from one goroutine (the one
// reading the capture); it copies each packet into a batch for the worker
// that owns its tuple. Snapshot and the views handed to Config.Done come
// in the same order as from one Tracker, whatever the number of workers:
// by each connection's first packet. Sharded does not keep connections
// for ladders (Config.Keep is ignored): use a Tracker for that.
type Sharded struct {
	cfg        Config
	w          []worker
	cur        []*batch
	free       sync.Pool
	packets    uint64
	first      int64
	last       int64
	sinceSweep int
	held       int
	closed     bool
}

// NewSharded returns a Sharded over n workers; n <= 0 means GOMAXPROCS.
// Call Close when done with it.
func NewSharded(cfg Config, n int) *Sharded {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	cfg.Keep = nil
	s := &Sharded{cfg: cfg, w: make([]worker, n), cur: make([]*batch, n)}
	s.free.New = func() any { return &batch{pkts: make([]slim, 0, batchSize)} }
	for i := range s.w {
		wc := cfg
		if cfg.Done != nil {
			wc.Done = func(*ConnView) {} // replaced per sweep (see run)
		}
		tr := New(wc)
		tr.manual = true
		s.w[i] = worker{tr: tr, in: make(chan *batch, 8), out: make(chan result)}
		go s.w[i].run(s)
	}
	return s
}

// run feeds batches to the worker's tracker and answers requests.
func (w *worker) run(s *Sharded) {
	var p capture.Packet
	for b := range w.in {
		for i := range b.pkts {
			q := &b.pkts[i]
			p.T = time.Unix(0, q.t)
			p.Src, p.Dst, p.Seq, p.Ack = q.src, q.dst, q.seq, q.ack
			p.PayloadLen, p.Window, p.Flags = int(q.n), q.win, q.flags
			p.Options.HasWindowScale, p.Options.WindowScale = q.hasWS, q.ws
			w.tr.feed(&p, q.id, q.h)
		}
		switch b.req {
		case reqSweep:
			var r result
			w.tr.cfg.Done = func(v *ConnView) { r.views = append(r.views, *v) }
			w.tr.sweepIDs(b.at, &r.ids)
			r.held = len(w.tr.conns)
			w.out <- r
		case reqSnapshot:
			var r result
			r.views = w.tr.Snapshot(time.Unix(0, b.at))
			r.ids = make([]uint64, len(w.tr.conns))
			for i, c := range w.tr.conns {
				r.ids[i] = w.tr.slab.at(c).id
			}
			r.held = len(w.tr.conns)
			w.out <- r
		case reqStop:
			b.pkts = b.pkts[:0]
			s.free.Put(b)
			close(w.out)
			return
		}
		b.pkts, b.req = b.pkts[:0], reqNone
		s.free.Put(b)
	}
}

// Feed hands the next packet to the worker owning its connection.
// Packets must come in timestamp order; p is not retained.
func (s *Sharded) Feed(p *capture.Packet) {
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return
	}
	now := p.T.UnixNano()
	if s.packets == 0 {
		s.first = now
	}
	if now > s.last || s.packets == 0 {
		s.last = now
	}
	// The worker is picked by the tuple's hash, the same in both
	// directions; its high bits, as the table uses the low ones.
	h := pairHash(p.Src, p.Dst)
	k := int((h >> 40) % uint64(len(s.w)))
	b := s.cur[k]
	if b == nil {
		b = s.free.Get().(*batch)
		s.cur[k] = b
	}
	b.pkts = append(b.pkts, slim{t: now, id: s.packets, h: h, src: p.Src, dst: p.Dst, seq: p.Seq, ack: p.Ack,
		n: int32(max(min(p.PayloadLen, 1<<31-1), 0)), win: p.Window, flags: p.Flags,
		ws: p.Options.WindowScale, hasWS: p.Options.HasWindowScale})
	s.packets++
	if len(b.pkts) == batchSize {
		s.w[k].in <- b
		s.cur[k] = nil
	}
	if s.cfg.Done != nil {
		s.sinceSweep++
		// The same rule as Tracker.Feed's, on counts that do not depend
		// on the number of workers, so that the views come out the same.
		if s.sinceSweep >= max(4096, s.held/2) {
			s.sweep(now)
		}
	}
}

// ask sends every worker its pending packets and the request, and merges
// the answers by connection id.
func (s *Sharded) ask(req request, at int64) []ConnView {
	for k := range s.w {
		b := s.cur[k]
		if b == nil {
			b = s.free.Get().(*batch)
		}
		s.cur[k] = nil
		b.req, b.at = req, at
		s.w[k].in <- b
	}
	rs := make([]result, len(s.w))
	n := 0
	for k := range s.w {
		rs[k] = <-s.w[k].out
		n += len(rs[k].views)
	}
	s.held = 0
	for _, r := range rs {
		s.held += r.held
	}
	if req == reqSweep {
		s.sinceSweep = 0
	}
	if len(rs) == 1 {
		return rs[0].views
	}
	// Merge: each worker's views are in id order already.
	out := make([]ConnView, 0, n)
	pos := make([]int, len(rs))
	for len(out) < n {
		best := -1
		for k, r := range rs {
			if pos[k] < len(r.ids) && (best < 0 || r.ids[pos[k]] < rs[best].ids[pos[best]]) {
				best = k
			}
		}
		out = append(out, rs[best].views[pos[best]])
		pos[best]++
	}
	return out
}

// sweep hands the connections final at now to Config.Done, in order.
func (s *Sharded) sweep(now int64) {
	for _, v := range s.ask(reqSweep, now) {
		s.cfg.Done(&v)
	}
}

// Flush hands every connection that is final at instant at to
// Config.Done (when set), as Tracker.Flush does.
func (s *Sharded) Flush(at time.Time) {
	if s.cfg.Done != nil && !s.closed {
		s.sweep(at.UnixNano())
	}
}

// Snapshot returns every connection held as it stands at instant at, in
// order of first packet, as Tracker.Snapshot does.
func (s *Sharded) Snapshot(at time.Time) []ConnView {
	if s.closed {
		return nil
	}
	return s.ask(reqSnapshot, at.UnixNano())
}

// Close stops the workers. The Sharded cannot be used afterwards.
func (s *Sharded) Close() {
	if s.closed {
		return
	}
	s.closed = true
	for k := range s.w {
		b := s.cur[k]
		if b == nil {
			b = s.free.Get().(*batch)
		}
		s.cur[k] = nil
		b.req = reqStop
		s.w[k].in <- b
		close(s.w[k].in)
		for range s.w[k].out {
		}
	}
}

// Packets is the number of packets fed.
func (s *Sharded) Packets() uint64 { return s.packets }

// First and Last are the timestamps of the first and the latest packet
// fed; zero before any.
func (s *Sharded) First() time.Time {
	if s.packets == 0 {
		return time.Time{}
	}
	return fromNanos(s.first)
}

// Last: see First.
func (s *Sharded) Last() time.Time {
	if s.packets == 0 {
		return time.Time{}
	}
	return fromNanos(s.last)
}
