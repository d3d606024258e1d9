package tcp

import (
	"slices"
	"sync"

	"github.com/tcpstate/tcpstate/seqnum"
)

// maxRanges bounds a rangeSet. A receiver holding more holes than this
// drops the segment that would open another; a sender whose peer reports
// more SACKed blocks than this forgets the highest (RFC 2018 §8 allows
// either: SACK information is advisory). Random loss makes few holes (a
// gigabit per second over 100 ms with 1% loss has about eighty in
// flight), but a queue overflowing under a sender in slow start or BBR's
// Startup drops every other packet of a window: thousands. The bound
// covers a 32 MiB window of 1448-byte segments, every other one lost; a
// set holds storage only for the ranges it has.
const maxRanges = 1 << 14

// seqRange is the sequence space [start, end).
type seqRange struct{ start, end seqnum.Value }

// rangeSet is a set of disjoint, non-adjacent sequence ranges kept in
// ascending order. The receiver keeps the out-of-order data it holds in
// one; the sender keeps what the peer has SACKed in another. Its storage
// grows as ranges are added and stays with the set, which goes back to a
// pool when empty, so steady loss recovery does not allocate.
type rangeSet struct {
	r []seqRange
	// last is the range that the latest add touched: RFC 2018 §4 wants it
	// reported first.
	last int
	// total is the bytes the ranges cover, so that counting what is
	// SACKed costs nothing however many holes there are.
	total int
}

func (s *rangeSet) reset() { s.r, s.last, s.total = s.r[:0], 0, 0 }

func (r seqRange) size() int { return int(r.start.Size(r.end)) }

// search returns the index of the first range that ends at or after seq
// (len(s.r) when none does).
func (s *rangeSet) search(seq seqnum.Value) int {
	lo, hi := 0, len(s.r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.r[m].end.LessThan(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// add inserts [start, end), merging it with the ranges it overlaps or
// touches. It reports false, changing nothing, when the set is full and
// the range touches none of the ranges held.
func (s *rangeSet) add(start, end seqnum.Value) bool {
	if !start.LessThan(end) {
		return true
	}
	// i: the first range that ends at or after start.
	i := s.search(start)
	// j: one past the last range that starts at or before end.
	j := i
	for j < len(s.r) && s.r[j].start.LessThanEq(end) {
		j++
	}
	if i == j {
		// Touches nothing: insert at i.
		if len(s.r) == maxRanges {
			return false
		}
		s.r = slices.Insert(s.r, i, seqRange{start, end})
		s.last = i
		s.total += int(start.Size(end))
		return true
	}
	for _, r := range s.r[i:j] {
		s.total -= r.size()
	}
	s.r[i] = seqRange{seqnum.Min(start, s.r[i].start), seqnum.Max(end, s.r[j-1].end)}
	s.total += s.r[i].size()
	s.r = slices.Delete(s.r, i+1, j)
	s.last = i
	return true
}

// trimBelow forgets everything before seq.
func (s *rangeSet) trimBelow(seq seqnum.Value) {
	k := s.search(seq)
	if k < len(s.r) && s.r[k].end == seq {
		k++ // ends exactly at seq: nothing of it is left
	}
	if k > 0 {
		for _, r := range s.r[:k] {
			s.total -= r.size()
		}
		s.r = slices.Delete(s.r, 0, k)
		s.last = max(s.last-k, 0)
	}
	if len(s.r) > 0 && s.r[0].start.LessThan(seq) {
		s.total -= int(s.r[0].start.Size(seq))
		s.r[0].start = seq
	}
}

// contains reports whether seq is in the set, and if so the end of its
// range.
func (s *rangeSet) contains(seq seqnum.Value) (bool, seqnum.Value) {
	i := s.search(seq)
	if i < len(s.r) && s.r[i].start.LessThanEq(seq) && seq.LessThan(s.r[i].end) {
		return true, s.r[i].end
	}
	return false, 0
}

// bytesAbove counts the bytes of the set at or after seq, and how many
// separate ranges hold them.
func (s *rangeSet) bytesAbove(seq seqnum.Value) (bytes int, ranges int) {
	if len(s.r) > 0 && seq.LessThanEq(s.r[0].start) {
		return s.total, len(s.r) // all of it
	}
	for i := len(s.r) - 1; i >= 0; i-- {
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
	return len(s.p.r)
}

func (s *ranges) empty() bool       { return s.p == nil || len(s.p.r) == 0 }
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
	if len(s.p.r) == 0 {
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
