// Package pipe joins two link.Endpoints in one process: what one writes,
// the other reads. It stands in for a wire between two stacks in tests,
// benchmarks and the simulator, and can impair the traffic it carries —
// loss, duplication, reordering, delay and corruption — from a seeded
// random source, so that a run can be repeated.
//
// Each direction is a bounded queue of packets, like a NIC's transmit
// ring. WritePackets copies every packet into a buffer the pipe owns, so
// the writer may reuse its buffers at once; buffers are recycled, so a
// pipe allocates nothing per packet once it has warmed up.
//
// By default a full queue drops the packet and counts it, as a NIC does.
// That is the right default for a TCP stack on top: a writer never stalls
// (so it never holds a connection's lock while waiting for the far side's
// reader), the two stacks' read loops cannot deadlock by each blocking on
// a write into the other's full queue, and 1024 packets of queue absorb
// any ordinary window, so the only drops are the ones TCP's congestion
// control is built to answer. Config.Block makes a full queue block the
// writer instead; use it for traffic with no congestion control of its
// own, and only where the reader never writes into a full queue itself.
package pipe

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/link"
)

// Defaults for the zero fields of a Config.
const (
	DefaultMTU      = 1500
	DefaultQueueLen = 1024
)

// Config describes a pipe. Both directions get the same settings, each
// with its own random stream, so the zero value is a clean 1500-byte link
// with a 1024-packet queue each way.
type Config struct {
	// MTU is the largest packet the pipe carries; DefaultMTU when zero.
	MTU int

	// QueueLen is how many packets each direction holds — waiting to be
	// read, or still in flight when Delay or Reorder hold them back;
	// DefaultQueueLen when zero.
	QueueLen int

	// Block makes WritePackets wait for room when the queue is full
	// instead of dropping the packet. See the package comment for why
	// dropping is the default.
	Block bool

	// Loss, Duplicate, Reorder and Corrupt are probabilities between 0
	// and 1, drawn for each packet written. A lost packet vanishes; a
	// duplicated one arrives twice; a reordered one is held back for
	// ReorderDelay, so packets written after it overtake it; a corrupted
	// one has one byte changed (the checksums should catch it).
	Loss, Duplicate, Reorder, Corrupt float64

	// Delay is the one-way delay every packet spends in the pipe.
	Delay time.Duration

	// ReorderDelay is the extra time a reordered packet is held back; it
	// defaults to Delay, or to a millisecond when Delay is zero.
	ReorderDelay time.Duration

	// Seed seeds the random source of the impairments. Two pipes with
	// the same Config, fed the same packets in the same order, drop,
	// duplicate, reorder and corrupt the same ones.
	Seed uint64
}

// ErrTooBig is returned, wrapped, by WritePackets for a packet longer
// than the pipe's MTU. The packets before it were sent; it and the
// packets after it were not.
var ErrTooBig = errors.New("pipe: packet larger than MTU")

// Stats counts what happened to the packets one endpoint wrote. Every
// packet written is Sent; it is then Delivered to the peer's reader,
// dropped for one of the reasons below, or still Queued; a duplicated
// packet is two of those. So at any moment
//
//	Delivered + Queued + Dropped() == Sent + Duplicated
type Stats struct {
	// Sent counts packets accepted by WritePackets, including the
	// packets the impairments then lose. Duplicates are not counted
	// again.
	Sent uint64
	// SentBytes is the total length of the Sent packets.
	SentBytes uint64
	// Delivered counts packets handed to the peer's ReadPackets,
	// duplicates included.
	Delivered uint64
	// Queued is how many packets are in the pipe now, waiting to be read
	// or held back by Delay or Reorder.
	Queued int

	// Lost counts packets dropped by the Loss impairment.
	Lost uint64
	// QueueFull counts packets dropped because the queue was full.
	QueueFull uint64
	// PeerClosed counts packets dropped because the peer was closed:
	// those written after it closed and those still queued when it did.
	PeerClosed uint64

	// Duplicated, Reordered and Corrupted count the packets those
	// impairments touched. Delayed packets are not counted: with a
	// Delay, every packet is.
	Duplicated, Reordered, Corrupted uint64
}

// Dropped is the number of packets that were sent but will never be
// delivered, whatever the reason.
func (s Stats) Dropped() uint64 { return s.Lost + s.QueueFull + s.PeerClosed }

// Endpoint is one end of a pipe. It implements link.Endpoint: safe for
// one reader and any number of concurrent writers.
type Endpoint struct {
	mtu    int
	in     *queue // packets the peer wrote, for this end to read
	out    *queue // packets this end writes, for the peer to read
	closed atomic.Bool
}

var _ link.Endpoint = (*Endpoint)(nil)

// New makes a pipe and returns its two ends. What a writes, b reads, and
// the other way round. Each end must be closed on its own; closing one
// does not close the other (see Endpoint.Close).
func New(cfg Config) (a, b *Endpoint) {
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.ReorderDelay <= 0 {
		cfg.ReorderDelay = cfg.Delay
		if cfg.ReorderDelay <= 0 {
			cfg.ReorderDelay = time.Millisecond
		}
	}
	ab := newQueue(&cfg, 0)
	ba := newQueue(&cfg, 1)
	a = &Endpoint{mtu: cfg.MTU, in: ba, out: ab}
	b = &Endpoint{mtu: cfg.MTU, in: ab, out: ba}
	return a, b
}

// MTU returns the pipe's MTU.
func (e *Endpoint) MTU() int { return e.mtu }

// Stats returns the counts for the packets this end has written.
func (e *Endpoint) Stats() Stats { return e.out.stats() }

// ReadPackets blocks until at least one packet is ready, then copies up
// to min(len(bufs), len(sizes)) of them. Once the endpoint is closed it
// returns link.ErrClosed, unwrapped, even if packets were still queued.
func (e *Endpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return e.in.read(bufs, sizes)
}

// WritePackets copies the packets into the pipe, in order, and returns
// how many it sent. Packets the impairments lose, or that meet a full
// queue (unless Config.Block is set) or a closed peer, count as sent:
// they left this end, as they would leave a NIC. It returns
// link.ErrClosed once this end is closed, and an error wrapping ErrTooBig
// for a packet longer than the MTU.
func (e *Endpoint) WritePackets(pkts [][]byte) (int, error) {
	return e.out.write(e, pkts)
}

// Close closes this end: a blocked ReadPackets, and a WritePackets
// blocked on a full queue, return link.ErrClosed, and so do later calls.
// Packets still queued for this end are dropped. The peer is not closed:
// its reads wait for packets that will not come, and what it writes is
// dropped and counted as PeerClosed, as on a wire with nobody at the far
// end. Close is idempotent and always returns nil.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.in.closeReader()
	e.out.wakeWriters()
	return nil
}

// queue is one direction of a pipe: the packets the writing end has sent
// and the reading end has not yet read.
type queue struct {
	mtu      int
	limit    int
	block    bool
	impaired bool
	cfg      Config

	mu     sync.Mutex
	rng    *rand.Rand // guarded by mu
	ready  ring       // packets due for delivery, in order
	held   heldHeap   // packets not yet due (Delay, Reorder)
	seq    uint64     // write order, to keep held packets stable
	free   [][]byte   // recycled buffers, each of capacity mtu
	closed bool       // the reading end is closed
	st     Stats      // Queued is ready.n + len(held), filled in by stats

	readerWaiting bool
	wake          chan struct{} // capacity 1: a packet may be ready
	done          chan struct{} // closed when the reading end closes
	timer         *time.Timer   // the reader's, for held packets

	writersWaiting int
	room           sync.Cond // a writer may have room now (Block)
}

func newQueue(cfg *Config, dir uint64) *queue {
	q := &queue{
		mtu:   cfg.MTU,
		limit: cfg.QueueLen,
		block: cfg.Block,
		impaired: cfg.Loss > 0 || cfg.Duplicate > 0 || cfg.Reorder > 0 ||
			cfg.Corrupt > 0 || cfg.Delay > 0,
		cfg:  *cfg,
		rng:  rand.New(rand.NewPCG(cfg.Seed, dir)),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	q.room.L = &q.mu
	return q
}

func (q *queue) stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.st
	s.Queued = q.ready.n + len(q.held)
	return s
}

// count is how many packets the queue holds; q.mu must be held.
func (q *queue) count() int { return q.ready.n + len(q.held) }

// buffer returns a buffer holding a copy of p; q.mu must be held.
func (q *queue) buffer(p []byte) []byte {
	var b []byte
	if n := len(q.free); n > 0 {
		b = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		b = make([]byte, 0, q.mtu)
	}
	return append(b[:0], p...)
}

// recycle keeps b for a later packet; q.mu must be held.
func (q *queue) recycle(b []byte) {
	if len(q.free) < q.limit {
		q.free = append(q.free, b[:0])
	}
}

func (q *queue) write(e *Endpoint, pkts [][]byte) (int, error) {
	if e.closed.Load() {
		return 0, link.ErrClosed
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	woke := false
	for i, p := range pkts {
		if len(p) > q.mtu {
			q.signal(woke)
			return i, fmt.Errorf("%w: %d bytes, MTU %d", ErrTooBig, len(p), q.mtu)
		}
		if q.closed {
			q.st.Sent++
			q.st.SentBytes += uint64(len(p))
			q.st.PeerClosed++
			continue
		}
		for q.block && q.count() >= q.limit && !q.closed {
			// Wake the reader before sleeping, or it may never drain
			// what this batch has queued so far.
			q.signal(woke)
			woke = false
			q.writersWaiting++
			q.room.Wait()
			q.writersWaiting--
			if e.closed.Load() {
				return i, link.ErrClosed
			}
		}
		q.st.Sent++
		q.st.SentBytes += uint64(len(p))
		if q.closed {
			q.st.PeerClosed++
			continue
		}
		if !q.impaired {
			if q.ready.n >= q.limit {
				q.st.QueueFull++
				continue
			}
			q.ready.push(q.buffer(p), q.limit)
			woke = true
			continue
		}
		if q.enqueueImpaired(p) {
			woke = true
		}
	}
	q.signal(woke)
	return len(pkts), nil
}

// enqueueImpaired applies the impairments to p and queues what is left of
// it, reporting whether anything was queued; q.mu must be held.
func (q *queue) enqueueImpaired(p []byte) bool {
	cfg := &q.cfg
	if cfg.Loss > 0 && q.rng.Float64() < cfg.Loss {
		q.st.Lost++
		return false
	}
	copies := 1
	if cfg.Duplicate > 0 && q.rng.Float64() < cfg.Duplicate {
		copies = 2
		q.st.Duplicated++
	}
	queued := false
	for c := 0; c < copies; c++ {
		if q.count() >= q.limit {
			q.st.QueueFull++
			continue
		}
		b := q.buffer(p)
		if cfg.Corrupt > 0 && len(b) > 0 && q.rng.Float64() < cfg.Corrupt {
			// XOR with a non-zero byte, so the byte surely changes.
			b[q.rng.IntN(len(b))] ^= byte(1 + q.rng.IntN(255))
			q.st.Corrupted++
		}
		delay := cfg.Delay
		if cfg.Reorder > 0 && q.rng.Float64() < cfg.Reorder {
			delay += cfg.ReorderDelay
			q.st.Reordered++
		}
		if delay <= 0 {
			q.ready.push(b, q.limit)
		} else {
			q.seq++
			q.held.push(held{at: time.Now().Add(delay), seq: q.seq, buf: b})
		}
		queued = true
	}
	return queued
}

// signal wakes a waiting reader if woke is set; q.mu must be held.
func (q *queue) signal(woke bool) {
	if woke && q.readerWaiting {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *queue) read(bufs [][]byte, sizes []int) (int, error) {
	want := min(len(bufs), len(sizes))
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return 0, link.ErrClosed
		}
		if want == 0 {
			q.mu.Unlock()
			return 0, nil
		}
		var now time.Time
		if len(q.held) > 0 {
			now = time.Now()
			q.release(now)
		}
		if q.ready.n > 0 {
			n := 0
			for n < want && q.ready.n > 0 {
				p := q.ready.pop()
				sizes[n] = len(p)
				copy(bufs[n], p)
				q.recycle(p)
				n++
			}
			q.st.Delivered += uint64(n)
			if q.writersWaiting > 0 {
				q.room.Broadcast()
			}
			q.mu.Unlock()
			return n, nil
		}
		// Nothing ready: wait for a writer, for the first held packet to
		// fall due, or for Close.
		var due <-chan time.Time
		if len(q.held) > 0 {
			d := q.held[0].at.Sub(now)
			if q.timer == nil {
				q.timer = time.NewTimer(d)
			} else {
				q.timer.Reset(d)
			}
			due = q.timer.C
		}
		q.readerWaiting = true
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-due:
		case <-q.done:
		}
		q.mu.Lock()
		q.readerWaiting = false
		if due != nil {
			q.timer.Stop()
		}
	}
}

// release moves the held packets that are due by now to the ready ring;
// q.mu must be held.
func (q *queue) release(now time.Time) {
	for len(q.held) > 0 && !q.held[0].at.After(now) {
		q.ready.push(q.held.pop().buf, q.limit)
	}
}

func (q *queue) closeReader() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.st.PeerClosed += uint64(q.count())
	q.ready = ring{}
	q.held = nil
	q.free = nil
	close(q.done)
	q.room.Broadcast()
}

// wakeWriters wakes the writers blocked on a full queue, so that those of
// a closed endpoint can return.
func (q *queue) wakeWriters() {
	q.mu.Lock()
	q.room.Broadcast()
	q.mu.Unlock()
}

// ring is a FIFO of packets, grown up to a limit.
type ring struct {
	buf     [][]byte
	head, n int
}

func (r *ring) push(p []byte, limit int) {
	if r.n == len(r.buf) {
		size := max(16, 2*len(r.buf))
		size = min(size, limit)
		if size <= r.n {
			size = r.n + 1 // cannot happen while callers respect limit
		}
		nb := make([][]byte, size)
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = p
	r.n++
}

func (r *ring) pop() []byte {
	p := r.buf[r.head]
	r.buf[r.head] = nil
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.n--
	return p
}

// held is a packet waiting in the pipe until at.
type held struct {
	at  time.Time
	seq uint64
	buf []byte
}

// heldHeap is a min-heap of held packets by due time, then write order.
// It is written out rather than built on container/heap, whose interface
// would allocate for every push.
type heldHeap []held

func (h heldHeap) less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}

func (h *heldHeap) push(x held) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *heldHeap) pop() held {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = held{}
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
