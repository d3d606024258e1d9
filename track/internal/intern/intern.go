// Package intern keeps the settings of the tracker's middlebox models in
// a process-wide, append-only table, so that a model's entry — one per
// tracked connection — names its settings with a 16-bit index instead of
// holding an 8-byte pointer.
package intern

import (
	"sync"
	"sync/atomic"
)

// Max is how many distinct values a Table can hold.
const Max = 1 << 16

// Table interns values of T by equality. Index 0 is the value it was made
// with (a model's defaults). Reading is lock-free; adding takes a lock and
// replaces the table whole.
type Table[T comparable] struct {
	mu   sync.Mutex
	vals atomic.Pointer[[]*T]
}

// New returns a table holding first at index 0.
func New[T comparable](first T) *Table[T] {
	t := &Table[T]{}
	s := []*T{&first}
	t.vals.Store(&s)
	return t
}

// Index returns the index of a value equal to v, adding it if it is new.
// It reports false when the table is full.
func (t *Table[T]) Index(v T) (uint16, bool) {
	if v == *(*t.vals.Load())[0] {
		return 0, true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := *t.vals.Load()
	for i, c := range s {
		if *c == v {
			return uint16(i), true
		}
	}
	if len(s) >= Max {
		return 0, false
	}
	grown := append(s[:len(s):len(s)], &v)
	t.vals.Store(&grown)
	return uint16(len(grown) - 1), true
}

// At returns the value at index i, which Index returned.
func (t *Table[T]) At(i uint16) *T { return (*t.vals.Load())[i] }
