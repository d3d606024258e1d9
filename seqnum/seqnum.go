// Package seqnum implements TCP's 32-bit sequence-number arithmetic
// (RFC 9293 §3.4).
//
// Sequence numbers live in a space of 2^32 values that wraps around, so an
// ordinary integer comparison gives the wrong answer near the wrap. All
// comparisons here are made modulo 2^32: a is "less than" b when b lies in
// the half of the space that follows a. This is the arithmetic the RFC
// means when it writes "=<" between sequence numbers.
package seqnum

// Value is a TCP sequence or acknowledgment number.
type Value uint32

// Size is a length in sequence space (SEG.LEN, a window).
type Size uint32

// LessThan reports whether v comes before w, modulo 2^32 (RFC 9293 §3.4).
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports whether v comes before w or equals it.
func (v Value) LessThanEq(w Value) bool { return int32(v-w) <= 0 }

// GreaterThan reports whether v comes after w, modulo 2^32.
func (v Value) GreaterThan(w Value) bool { return int32(v-w) > 0 }

// GreaterThanEq reports whether v comes after w or equals it.
func (v Value) GreaterThanEq(w Value) bool { return int32(v-w) >= 0 }

// InRange reports whether a =< v < b, modulo 2^32. An empty range (a == b)
// contains nothing.
func (v Value) InRange(a, b Value) bool { return v-a < b-a }

// InWindow reports whether v lies in the window that starts at first and is
// size long: first =< v < first+size. A zero-size window contains nothing.
func (v Value) InWindow(first Value, size Size) bool {
	return v.InRange(first, first.Add(size))
}

// Add returns v advanced by n, wrapping at 2^32.
func (v Value) Add(n Size) Value { return v + Value(n) }

// Sub returns v moved back by n, wrapping at 2^32.
func (v Value) Sub(n Size) Value { return v - Value(n) }

// Size returns the distance from v forward to w, that is w - v modulo 2^32.
func (v Value) Size(w Value) Size { return Size(w - v) }

// Max returns whichever of v and w comes later.
func Max(v, w Value) Value {
	if v.LessThan(w) {
		return w
	}
	return v
}

// Min returns whichever of v and w comes earlier.
func Min(v, w Value) Value {
	if v.LessThan(w) {
		return v
	}
	return w
}
