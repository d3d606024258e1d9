package seqnum

import "testing"

func TestCompareAcrossWrap(t *testing.T) {
	const top = Value(0xFFFFFFF0)
	cases := []struct {
		a, b Value
		less bool
	}{
		{1, 2, true},
		{2, 1, false},
		{top, 0x10, true},              // 0x10 follows 0xFFFFFFF0 across the wrap
		{0x10, top, false},             // and not the other way round
		{0xFFFFFFFF, 0, true},          // the wrap itself
		{0, 0xFFFFFFFF, false},         //
		{0, 0x7FFFFFFF, true},          // just under half the space ahead
		{0x7FFFFFFF, 0, false},         //
		{0x80000002, 0x00000001, true}, // 1 lies 2^31-1 ahead of 0x80000002
	}
	for _, c := range cases {
		if got := c.a.LessThan(c.b); got != c.less {
			t.Errorf("%#x < %#x = %v, want %v", c.a, c.b, got, c.less)
		}
		if got := c.b.GreaterThan(c.a); got != c.less {
			t.Errorf("%#x > %#x = %v, want %v", c.b, c.a, got, c.less)
		}
		if c.a.LessThanEq(c.a) != true || c.a.GreaterThanEq(c.a) != true {
			t.Errorf("%#x is not =< and >= itself", c.a)
		}
		if c.a.LessThan(c.a) || c.a.GreaterThan(c.a) {
			t.Errorf("%#x is strictly ordered against itself", c.a)
		}
	}
}

func TestAddSubSizeAcrossWrap(t *testing.T) {
	v := Value(0xFFFFFFFE)
	w := v.Add(5)
	if w != 3 {
		t.Fatalf("0xFFFFFFFE+5 = %#x, want 3", w)
	}
	if v.Size(w) != 5 {
		t.Fatalf("distance = %d, want 5", v.Size(w))
	}
	if w.Sub(5) != v {
		t.Fatalf("3-5 = %#x, want %#x", w.Sub(5), v)
	}
	if Max(v, w) != w || Min(v, w) != v {
		t.Fatalf("Max/Min across the wrap picked the wrong value")
	}
}

func TestInWindowAcrossWrap(t *testing.T) {
	first := Value(0xFFFFFF00)
	const size = Size(0x200) // the window spans the wrap: 0xFFFFFF00 .. 0x000000FF
	in := []Value{0xFFFFFF00, 0xFFFFFFFF, 0, 0xFF}
	out := []Value{0xFFFFFEFF, 0x100, 0x80000000}
	for _, v := range in {
		if !v.InWindow(first, size) {
			t.Errorf("%#x should be in [%#x, +%#x)", v, first, size)
		}
	}
	for _, v := range out {
		if v.InWindow(first, size) {
			t.Errorf("%#x should not be in [%#x, +%#x)", v, first, size)
		}
	}
	if Value(5).InWindow(5, 0) {
		t.Error("a zero window contains nothing")
	}
	if !Value(7).InRange(5, 8) || Value(8).InRange(5, 8) || Value(4).InRange(5, 8) {
		t.Error("InRange is not half-open [a, b)")
	}
}

// TestAgainstWideArithmetic checks the modular comparisons against plain
// 64-bit arithmetic for values within half the space of each other.
func TestAgainstWideArithmetic(t *testing.T) {
	bases := []uint64{0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF0000}
	deltas := []uint64{0, 1, 2, 1000, 0x7FFFFFFF}
	for _, b := range bases {
		for _, d := range deltas {
			a := Value(b)
			c := Value(b + d) // truncates: wraps exactly as the wire does
			if d > 0 && !a.LessThan(c) {
				t.Errorf("%#x should precede %#x (delta %d)", a, c, d)
			}
			if a.Size(c) != Size(d) {
				t.Errorf("size %#x→%#x = %d, want %d", a, c, a.Size(c), d)
			}
		}
	}
}
