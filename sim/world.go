// Package sim is a deterministic network simulator for tcpstate: hosts
// running tcp.Conns, joined by links that delay, lose, duplicate, reorder
// and corrupt packets, under a virtual clock.
//
// A World holds the clock, a seeded random source (math/rand/v2's PCG) and
// a queue of what happens next, ordered by time and then by the order it
// was scheduled, so a run depends on nothing but its seed and its script.
// Hosts build real IPv4 or IPv6 packets with package header and parse what
// arrives, so checksums are checked on every delivery; they demultiplex by
// tuple, answer SYNs on listening ports and send RSTs for segments that
// belong to no connection, as RFC 9293 §3.10.7.1 says.
//
// A scenario is a script of calls at given virtual times (World.At,
// World.After), scripted impairments (Direction.DropIf, DelayIf,
// Host.Inject) and random ones (LinkConfig). Run, RunUntil and
// RunUntilIdle advance the clock from one happening to the next: a packet
// delivery, a scripted action, or a connection's timer deadline. Every
// connection event and every link event goes to the World's trace.Sink,
// grouped by step; a Tap (World.SetTap) sees every segment sent and
// received and every event, for tests that check invariants as a run
// goes.
//
// Connections carry a small application model (Conn): writes queue and
// feed the send buffer, reads keep what arrives. WriteStream and OnRead
// move gigabytes without holding them, for benchmarks and the CLI. An
// untraced run allocates nothing per packet once a connection is moving
// data: packet buffers, packets and the segment being delivered are
// reused (see BenchmarkBulk).
//
// The same seed and script give the same run, byte for byte.
package sim

import (
	"math/rand/v2"
	"time"

	"github.com/tcpstate/tcpstate/trace"
)

// Epoch is the wall-clock time at which every World starts. Times in
// records are offsets from it.
var Epoch = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// World is a simulation: a virtual clock, a seeded random source, hosts,
// links and the queue of what happens next. A World is not safe for
// concurrent use; run separate Worlds in parallel instead.
type World struct {
	now   time.Duration
	rng   *rand.Rand
	seed  uint64
	q     queue
	seq   uint64 // insertion counter: equal times run in scheduling order
	step  uint64
	pktID uint64
	hosts []*Host
	links []*Link
	sink  trace.Sink
	tap   Tap
	free  [][]byte  // packet buffers for reuse
	pkts  []*packet // packets for reuse

	// Stats counts what happened to packets.
	Stats Stats
}

// Stats counts packets by their fate.
type Stats struct {
	Sent        int `json:"sent"`        // packets handed to a link (injected ones included)
	Delivered   int `json:"delivered"`   // packets that reached a host and parsed
	Lost        int `json:"lost"`        // lost at random (LinkConfig.Loss)
	Filtered    int `json:"filtered"`    // dropped by a DropIf filter
	QueueDrops  int `json:"queue_drops"` // dropped at a full link queue
	Duplicated  int `json:"duplicated"`  // extra copies made (LinkConfig.Duplicate)
	Reordered   int `json:"reordered"`   // held back at random (LinkConfig.Reorder)
	Delayed     int `json:"delayed"`     // held back by a DelayIf filter
	Corrupted   int `json:"corrupted"`   // damaged on a link (LinkConfig.Corrupt)
	BadPackets  int `json:"bad_packets"` // failed to parse at the receiver: bad checksum or malformed
	NoRoute     int `json:"no_route"`    // the sender had no link to send on
	Unreachable int `json:"unreachable"` // reached a host that does not have the destination address
	Resets      int `json:"resets"`      // RSTs hosts sent for segments matching no connection
	Injected    int `json:"injected"`    // crafted segments put on the wire
}

// New returns a World at virtual time zero (Epoch) whose randomness comes
// from seed alone.
func New(seed uint64) *World {
	return &World{
		seed: seed,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Seed returns the seed the World was made with.
func (w *World) Seed() uint64 { return w.seed }

// SetTrace sends every record of the run to s (nil: none). Set it before
// creating hosts so their introductions are recorded too; connections
// created before a sink was set are not observed.
func (w *World) SetTrace(s trace.Sink) { w.sink = s }

// SetTap has t watch every segment the hosts send and receive and every
// event of their connections (nil: none), for tests that check
// invariants as a run goes. Set it before creating hosts' connections:
// connections created before it was set report no events to it.
func (w *World) SetTap(t Tap) { w.tap = t }

// Rand returns the World's random source, for scripts that want
// randomness that follows the seed.
func (w *World) Rand() *rand.Rand { return w.rng }

// Now returns the current virtual wall-clock time.
func (w *World) Now() time.Time { return Epoch.Add(w.now) }

// Elapsed returns the virtual time since the start.
func (w *World) Elapsed() time.Duration { return w.now }

// Hosts returns the hosts in the order they were created.
func (w *World) Hosts() []*Host { return w.hosts }

// At schedules f to run at virtual time t after the start; a time already
// past means now. Actions scheduled for the same time run in the order
// they were scheduled.
func (w *World) At(t time.Duration, f func()) {
	w.push(event{at: max(t, w.now), kind: evAction, fn: f})
}

// After schedules f to run d after the current virtual time.
func (w *World) After(d time.Duration, f func()) { w.At(w.now+d, f) }

// Note records a line of narration at the current time; the ladder
// diagram prints it in the margin.
func (w *World) Note(text string) {
	w.step++
	if w.sink != nil {
		w.emit(&trace.Record{T: w.now, Kind: trace.KindNote, Text: text})
	}
}

// Pending reports whether anything is still scheduled: a packet in
// flight, an action, or a timer.
func (w *World) Pending() bool { return w.q.len() > 0 }

// Run runs everything scheduled up to and including virtual time until,
// then leaves the clock at until.
func (w *World) Run(until time.Duration) {
	for w.q.len() > 0 && w.q.peek().at <= until {
		w.dispatch(w.q.pop())
	}
	w.now = max(w.now, until)
}

// RunUntilIdle runs until nothing is left to happen, or until the next
// happening would come after virtual time limit. It reports whether the
// World went idle; if not, the clock is left at limit.
func (w *World) RunUntilIdle(limit time.Duration) bool {
	for w.q.len() > 0 {
		if w.q.peek().at > limit {
			w.now = max(w.now, limit)
			return false
		}
		w.dispatch(w.q.pop())
	}
	return true
}

// RunUntil runs happenings until done, asked after each one, returns
// true, or until the next happening would come after virtual time limit
// (the clock is then left at limit), or until nothing is left to happen.
// It reports whether done returned true.
func (w *World) RunUntil(limit time.Duration, done func() bool) bool {
	if done() {
		return true
	}
	for w.q.len() > 0 {
		if w.q.peek().at > limit {
			w.now = max(w.now, limit)
			return false
		}
		w.dispatch(w.q.pop())
		if done() {
			return true
		}
	}
	return false
}

// Step runs the next happening, whatever its time, and reports whether
// there was one.
func (w *World) Step() bool {
	if w.q.len() == 0 {
		return false
	}
	w.dispatch(w.q.pop())
	return true
}

func (w *World) dispatch(e event) {
	switch e.kind {
	case evAction:
		w.now = e.at
		w.step++
		e.fn()
	case evDeliver:
		w.now = e.at
		e.pkt.to.receive(e.pkt)
	case evTimer:
		c := e.conn
		if c.removed || !c.timerArmed || c.timerAt != e.at {
			return // stale: the deadline moved or the connection is gone
		}
		w.now = e.at
		c.timerArmed = false
		c.host.fireTimer(c)
	}
}

func (w *World) push(e event) {
	w.seq++
	e.seq = w.seq
	w.q.push(e)
}

func (w *World) emit(r *trace.Record) {
	r.Step = w.step
	w.sink.Emit(r)
}

// buf returns a packet buffer of at least n bytes.
func (w *World) buf(n int) []byte {
	if k := len(w.free); k > 0 {
		b := w.free[k-1]
		if cap(b) >= n {
			w.free = w.free[:k-1]
			return b[:n]
		}
	}
	return make([]byte, n, max(n, 2048))
}

// release returns a packet buffer for reuse.
func (w *World) release(b []byte) {
	if len(w.free) < 1024 {
		w.free = append(w.free, b[:0])
	}
}

// packet returns a packet to fill in, reused if one is free.
func (w *World) packet() *packet {
	if k := len(w.pkts); k > 0 {
		p := w.pkts[k-1]
		w.pkts = w.pkts[:k-1]
		return p
	}
	return new(packet)
}

// drop is the end of a packet: its buffer and itself go back for reuse.
func (w *World) drop(p *packet) {
	w.release(p.buf)
	*p = packet{}
	if len(w.pkts) < 1024 {
		w.pkts = append(w.pkts, p)
	}
}

// The kinds of event in the queue.
const (
	evAction uint8 = iota
	evDeliver
	evTimer
)

// event is one thing scheduled to happen.
type event struct {
	at   time.Duration
	seq  uint64
	kind uint8
	fn   func()
	pkt  *packet
	conn *Conn
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// queue is a binary min-heap of events ordered by (at, seq).
type queue struct{ h []event }

func (q *queue) len() int     { return len(q.h) }
func (q *queue) peek() *event { return &q.h[0] }

func (q *queue) push(e event) {
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) pop() event {
	top := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h[n] = event{}
	q.h = q.h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && q.h[l].before(&q.h[m]) {
			m = l
		}
		if r < n && q.h[r].before(&q.h[m]) {
			m = r
		}
		if m == i {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return top
}
