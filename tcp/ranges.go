package tcp

import (
	"sync"

	"github.com/tcpstate/tcpstate/seqnum"
)

// maxRanges bounds a rangeSet. A receiver holding more holes than this
// drops the segment that would open another; a sender whose peer reports
// more SACKed blocks than this forgets the highest (RFC 2018 §8 allows
// either: SACK information is advisory).
const maxRanges = 32

// seqRange is the sequence space [start, end).
type seqRange struct{ start, end seqnum.Value }

// rangeSet is a set of disjoint, non-adjacent sequence ranges kept in
// ascending order, in a fixed array so that it never allocates. The
// receiver keeps the out-of-order data it holds in one; the sender keeps
// what the peer has SACKed in another.
type rangeSet struct {
	r [maxRanges]seqRange
	n int
	// last is the range that the latest add touched: RFC 2018 §4 wants it
	// reported first.
	last int
}

func (s *rangeSet) reset() { s.n, s.last = 0, 0 }

// add inserts [start, end), merging it with the ranges it overlaps or
// touches. It reports false, changing nothing, when the set is full and
// the range touches none of the ranges held.
func (s *rangeSet) add(start, end seqnum.Value) bool {
	if !start.LessThan(end) {
		return true
	}
	// i: the first range that ends at or after start.
	i := 0
	for i < s.n && s.r[i].end.LessThan(start) {
		i++
	}
	// j: one past the last range that starts at or before end.
	j := i
	for j < s.n && s.r[j].start.LessThanEq(end) {
		j++
	}
	if i == j {
		// Touches nothing: insert at i.
		if s.n == maxRanges {
			return false
		}
		copy(s.r[i+1:s.n+1], s.r[i:s.n])
		s.r[i] = seqRange{start, end}
		s.n++
		s.last = i
		return true
	}
	merged := seqRange{seqnum.Min(start, s.r[i].start), seqnum.Max(end, s.r[j-1].end)}
	s.r[i] = merged
	copy(s.r[i+1:], s.r[j:s.n])
	s.n -= j - i - 1
	s.last = i
	return true
}

// trimBelow forgets everything before seq.
func (s *rangeSet) trimBelow(seq seqnum.Value) {
	k := 0
	for k < s.n && s.r[k].end.LessThanEq(seq) {
		k++
	}
	if k > 0 {
		copy(s.r[:], s.r[k:s.n])
		s.n -= k
		s.last = max(s.last-k, 0)
	}
	if s.n > 0 && s.r[0].start.LessThan(seq) {
		s.r[0].start = seq
	}
}

// contains reports whether seq is in the set, and if so the end of its
// range.
func (s *rangeSet) contains(seq seqnum.Value) (bool, seqnum.Value) {
	for i := 0; i < s.n; i++ {
		if seq.LessThan(s.r[i].start) {
			return false, 0
		}
		if seq.LessThan(s.r[i].end) {
			return true, s.r[i].end
		}
	}
	return false, 0
}

// bytesAbove counts the bytes of the set at or after seq, and how many
// separate ranges hold them.
func (s *rangeSet) bytesAbove(seq seqnum.Value) (bytes int, ranges int) {
	for i := s.n - 1; i >= 0; i-- {
		r := s.r[i]
		if r.end.LessThanEq(seq) {
			break
		}
		start := seqnum.Max(r.start, seq)
		bytes += int(start.Size(r.end))
		ranges++
	}
	return bytes, ranges
}

// ranges is a rangeSet held only while it is not empty: the SACK
// scoreboard and the out-of-order record are empty on every connection
// that loses and reorders nothing, so an idle connection holds a pointer
// for each instead of a set. The sets come from a pool and go back to it
// when they empty, so a connection that recovers from a loss now and then
// does not allocate each time.
type ranges struct{ p *rangeSet }

var rangePool = sync.Pool{New: func() any { return new(rangeSet) }}

func (s *ranges) len() int {
	if s.p == nil {
		return 0
	}
	return s.p.n
}

func (s *ranges) empty() bool       { return s.p == nil || s.p.n == 0 }
func (s *ranges) at(i int) seqRange { return s.p.r[i] }

// last is the range the latest add touched (RFC 2018 §4).
func (s *ranges) last() int {
	if s.p == nil {
		return 0
	}
	return s.p.last
}

// reset empties the set and gives its storage back.
func (s *ranges) reset() {
	if s.p != nil {
		s.p.reset()
		rangePool.Put(s.p)
		s.p = nil
	}
}

// add is rangeSet.add, taking storage when the set was empty.
func (s *ranges) add(start, end seqnum.Value) bool {
	if !start.LessThan(end) {
		return true
	}
	if s.p == nil {
		s.p = rangePool.Get().(*rangeSet)
	}
	return s.p.add(start, end)
}

// trimBelow is rangeSet.trimBelow, giving the storage back once empty.
func (s *ranges) trimBelow(seq seqnum.Value) {
	if s.p == nil {
		return
	}
	s.p.trimBelow(seq)
	if s.p.n == 0 {
		s.reset()
	}
}

func (s *ranges) contains(seq seqnum.Value) (bool, seqnum.Value) {
	if s.p == nil {
		return false, 0
	}
	return s.p.contains(seq)
}

func (s *ranges) bytesAbove(seq seqnum.Value) (bytes int, n int) {
	if s.p == nil {
		return 0, 0
	}
	return s.p.bytesAbove(seq)
}
