package track

// Connections live in a slab: big arrays of Conns allocated a chunk at a
// time, so that a connection costs its own size and no allocation header
// or size-class rounding, and the flow table and the list of connections
// name one by a 32-bit reference instead of a 64-bit pointer. A forgotten
// connection's slot goes to a free list and is reused by the next new
// connection, so the slab stays as big as the most connections held at
// once.

// connRef names a slot of a Tracker's slab: the slot's index plus one,
// so that the zero value names no connection.
type connRef uint32

// slabShift sets how many Conns one chunk holds (1 << slabShift). A chunk
// is a large allocation, which the runtime rounds up to whole 8 KiB
// pages; 1024 Conns, whose size is a multiple of 8, fill whole pages, so
// that nothing is lost to rounding.
const slabShift = 10

const slabChunk = 1 << slabShift

// slab holds a Tracker's connections. A slot's address never changes, so
// that a *Conn stays valid while its connection is held. References are
// 32 bits: 2^32-1 connections held at once would take over a terabyte,
// beyond any machine this runs on.
type slab struct {
	chunks []*[slabChunk]Conn
	used   uint32  // slots ever handed out
	free   connRef // the first free slot, the others chained by Conn.next
}

// at is the connection in slot r (r not zero).
func (s *slab) at(r connRef) *Conn {
	i := uint32(r) - 1
	return &s.chunks[i>>slabShift][i&(slabChunk-1)]
}

// alloc returns a zeroed slot, reusing a free one first.
func (s *slab) alloc() (connRef, *Conn) {
	if r := s.free; r != 0 {
		c := s.at(r)
		s.free, c.next = c.next, 0
		return r, c
	}
	if s.used&(slabChunk-1) == 0 {
		s.chunks = append(s.chunks, new([slabChunk]Conn))
	}
	s.used++
	r := connRef(s.used)
	return r, s.at(r)
}

// release clears slot r and puts it on the free list.
func (s *slab) release(r connRef) {
	c := s.at(r)
	*c = Conn{next: s.free}
	s.free = r
}
