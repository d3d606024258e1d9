package tcp

import (
	"sync"
	"unsafe"
)

// ring is a byte ring buffer: the connection's send and receive queues.
//
// Its capacity, size, is what the window is reckoned from; its storage
// starts small on first use and doubles as data needs it, up to size. An
// idle connection holds none, and one that only ever exchanges small
// requests and answers never pays for a full window's memory (nor for
// clearing it). Bytes are copied once, between the user's slice and the
// ring; segments refer to the ring's storage through peek.
type ring struct {
	buf  []byte
	head int32 // index in buf of the first byte
	n    int32 // bytes held
	size int32 // capacity: what the window is reckoned from
	hint int32 // storage to start from after release: what was last needed
}

// ringInitial is the storage a ring starts with; it grows by doubling.
const ringInitial = 4 << 10

func newRing(size int) ring { return ring{size: int32(min(size, maxRing))} }

// maxRing bounds a ring's capacity so its counts fit an int32 (1 GiB,
// the largest window RFC 7323 §2.3 lets a peer advertise).
const maxRing = 1 << 30

func (r *ring) len() int  { return int(r.n) }
func (r *ring) free() int { return int(r.size - r.n) }

// capacity is the size the window is reckoned from.
func (r *ring) capacity() int { return int(r.size) }

// grow raises the capacity to size (never lowers it, nor beyond maxRing):
// receive auto-tuning and the send buffer's growth with the congestion
// window. Storage follows lazily, as data needs it.
func (r *ring) grow(size int) {
	if size > int(r.size) {
		r.size = int32(min(size, maxRing))
	}
}

// reserve makes the storage hold at least end bytes past the head (end is
// at most size), keeping every byte at its place relative to the head.
func (r *ring) reserve(end int) {
	if end <= len(r.buf) {
		return
	}
	c := max(len(r.buf), ringInitial)
	if r.buf == nil {
		// After a release, start where the last data left off: a
		// connection moving bulk data empties its rings between bursts,
		// and growing again from 4 KiB each time would copy its way up.
		c = max(c, int(r.hint))
	}
	// Storage comes in powers of two times ringInitial, the sizes the
	// pools hold, even when that is more than size: the window is
	// reckoned from size, and positions wrap at the storage's length. A
	// size the auto-tuning left at no such multiple would otherwise be
	// allocated afresh, and zeroed, each time the ring empties and fills.
	for c < end {
		c *= 2
	}
	nb := getRingBuf(c)
	if old := len(r.buf); old > 0 {
		// Lay the old storage out from the head: queued bytes and any
		// out-of-order data past them keep their offsets.
		k := copy(nb, r.buf[r.head:])
		copy(nb[k:old], r.buf[:r.head])
		putRingBuf(r.buf)
	}
	r.buf, r.head = nb, 0
}

// write appends as much of p as fits and returns how much that was.
func (r *ring) write(p []byte) int {
	n := min(len(p), r.free())
	if n == 0 {
		return 0
	}
	r.reserve(int(r.n) + n)
	tail := (int(r.head) + int(r.n)) % len(r.buf)
	c := copy(r.buf[tail:], p[:n])
	copy(r.buf, p[c:n])
	r.n += int32(n)
	return n
}

// read moves up to len(p) bytes from the front of the ring into p.
func (r *ring) read(p []byte) int {
	n := min(len(p), int(r.n))
	if n == 0 {
		return 0
	}
	c := copy(p[:n], r.buf[r.head:])
	copy(p[c:n], r.buf)
	r.discard(n)
	return n
}

// discard drops n bytes from the front. The head moves on even when the
// ring empties: out-of-order data may already sit past it, at its place.
func (r *ring) discard(n int) {
	n = min(n, int(r.n))
	r.n -= int32(n)
	if len(r.buf) > 0 {
		r.head = int32((int(r.head) + n) % len(r.buf))
	}
}

// peek returns up to n bytes starting off bytes from the front, as one
// contiguous slice of the ring's storage: it stops early at the point where
// the storage wraps.
func (r *ring) peek(off, n int) []byte {
	if off >= int(r.n) || n <= 0 {
		return nil
	}
	n = min(n, int(r.n)-off)
	start := (int(r.head) + off) % len(r.buf)
	n = min(n, len(r.buf)-start)
	return r.buf[start : start+n]
}

// release lets the storage of an empty ring go, so that an idle
// connection holds none; storage of the initial size goes back to a pool
// for the next ring that needs some, so a connection that exchanges small
// requests and answers does not allocate for each.
func (r *ring) release() {
	if r.n != 0 || r.buf == nil {
		return
	}
	putRingBuf(r.buf)
	r.hint = int32(len(r.buf))
	r.buf, r.head = nil, 0
}

// ringPools hold the storage rings let go, by size: ringInitial<<i bytes
// in ringPools[i]. Storage of other sizes (a ring whose capacity is not
// such a size) is left to the collector.
var ringPools [20]sync.Pool

func ringPoolIndex(n int) int {
	for i := range ringPools {
		if n == ringInitial<<i {
			return i
		}
	}
	return -1
}

// bigRings keeps storage of bigRingMin bytes and more out of the
// sync.Pools, which the collector empties every cycle or two. A receiver
// that reads as fast as data arrives empties its ring, and lets its
// storage go, after nearly every segment; taking megabytes back from the
// allocator, zeroed, each time a collection had emptied the pool cost the
// long-fat-pipe simulation half its time. What the cache holds is bounded
// (bigRingsMax), so storage that idle connections let go is still given
// back to the collector beyond that.
var bigRings struct {
	sync.Mutex
	free  [len(ringPools)][]unsafe.Pointer
	bytes int
}

const (
	bigRingMin  = 256 << 10
	bigRingsMax = 64 << 20
)

// getRingBuf returns storage of n bytes, from a pool when there is some.
// Its contents are whatever they were: a ring reads only bytes written.
func getRingBuf(n int) []byte {
	if i := ringPoolIndex(n); i >= 0 && n >= bigRingMin {
		bigRings.Lock()
		var p unsafe.Pointer
		if k := len(bigRings.free[i]); k > 0 {
			p = bigRings.free[i][k-1]
			bigRings.free[i][k-1] = nil
			bigRings.free[i] = bigRings.free[i][:k-1]
			bigRings.bytes -= n
		}
		bigRings.Unlock()
		if p != nil {
			return unsafe.Slice((*byte)(p), n)
		}
	} else if i >= 0 {
		// The pools hold the storage's first byte: a pointer, which an
		// interface holds without allocating.
		if p, ok := ringPools[i].Get().(unsafe.Pointer); ok {
			return unsafe.Slice((*byte)(p), n)
		}
	}
	return make([]byte, n)
}

// putRingBuf gives storage back for another ring.
func putRingBuf(b []byte) {
	i := ringPoolIndex(len(b))
	if i < 0 {
		return
	}
	if len(b) >= bigRingMin {
		bigRings.Lock()
		if bigRings.bytes+len(b) <= bigRingsMax {
			bigRings.free[i] = append(bigRings.free[i], unsafe.Pointer(unsafe.SliceData(b)))
			bigRings.bytes += len(b)
		}
		bigRings.Unlock()
		return
	}
	ringPools[i].Put(unsafe.Pointer(unsafe.SliceData(b)))
}

// reset empties the ring and lets its storage go.
func (r *ring) reset() {
	r.buf, r.head, r.n = nil, 0, 0
}

// writeAt copies p into the free space starting off bytes past the queued
// data, without making it readable: out-of-order data waits there for the
// hole before it to fill. It returns how much of p fit.
func (r *ring) writeAt(off int, p []byte) int {
	if off >= r.free() || len(p) == 0 {
		return 0
	}
	n := min(len(p), r.free()-off)
	r.reserve(int(r.n) + off + n)
	pos := (int(r.head) + int(r.n) + off) % len(r.buf)
	c := copy(r.buf[pos:], p[:n])
	copy(r.buf, p[c:n])
	return n
}

// commit makes the next n bytes after the queued data readable: bytes put
// there earlier by writeAt.
func (r *ring) commit(n int) {
	n = min(n, r.free())
	r.reserve(int(r.n) + n)
	r.n += int32(n)
}
