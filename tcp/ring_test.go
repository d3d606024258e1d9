package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRingModel drives a ring with random writes, reads, discards and
// out-of-order writes committed later, against a plain slice model, with
// sizes that make its storage grow from the first 4 KiB to the full size
// and wrap, and checks every byte read and peeked.
func TestRingModel(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 7))
		size := []int{100, 5000, 64 << 10, 256 << 10}[seed%4]
		r := newRing(size)
		var model []byte // the bytes the ring holds, in order
		next := byte(0)
		gen := func(n int) []byte {
			p := make([]byte, n)
			for i := range p {
				p[i] = next
				next++
			}
			return p
		}
		for step := range 300 {
			switch rng.IntN(5) {
			case 0, 1: // write
				p := gen(rng.IntN(size/3 + 1))
				n := r.write(p)
				if want := min(len(p), size-len(model)); n != want {
					t.Fatalf("seed %d step %d: write took %d of %d, want %d", seed, step, n, len(p), want)
				}
				next -= byte(len(p) - n)
				model = append(model, p[:n]...)
			case 2: // read
				p := make([]byte, rng.IntN(size/2+1))
				n := r.read(p)
				if want := min(len(p), len(model)); n != want || !bytes.Equal(p[:n], model[:n]) {
					t.Fatalf("seed %d step %d: read %d bytes, want %d, data differs %v", seed, step, n, want, !bytes.Equal(p[:n], model[:min(n, len(model))]))
				}
				model = model[n:]
			case 3: // out of order: a later block first, then the hole, then commit
				if r.free() < 2 {
					continue
				}
				hole := 1 + rng.IntN(min(r.free()-1, 2000))
				later := gen(hole + rng.IntN(min(r.free()-hole, 2000)+1))
				first, second := later[:hole], later[hole:]
				got2 := r.writeAt(hole, second)
				got1 := r.writeAt(0, first)
				if got1 != len(first) || got2 != len(second) {
					t.Fatalf("seed %d step %d: writeAt took %d and %d of %d and %d", seed, step, got1, got2, len(first), len(second))
				}
				r.commit(len(later))
				model = append(model, later...)
			case 4: // peek at a random offset
				if len(model) == 0 {
					continue
				}
				off := rng.IntN(len(model))
				p := r.peek(off, len(model))
				if len(p) == 0 || !bytes.Equal(p, model[off:off+len(p)]) {
					t.Fatalf("seed %d step %d: peek(%d) gave %d bytes that differ from the model", seed, step, off, len(p))
				}
			}
			// Storage is ringInitial times a power of two, no more than
			// it takes to reach size.
			if r.len() != len(model) || len(r.buf) > max(ringInitial, 2*size-1) || r.buf != nil && ringPoolIndex(len(r.buf)) < 0 {
				t.Fatalf("seed %d step %d: ring holds %d (storage %d, size %d), model %d", seed, step, r.len(), len(r.buf), size, len(model))
			}
		}
	}
}

// TestRingStartsSmall: a ring with a large capacity that only ever holds a
// little keeps little storage.
func TestRingStartsSmall(t *testing.T) {
	r := newRing(256 << 10)
	r.write(make([]byte, 64))
	if len(r.buf) != ringInitial {
		t.Fatalf("storage %d after 64 bytes, want %d", len(r.buf), ringInitial)
	}
	r.write(make([]byte, 100<<10))
	if len(r.buf) < r.len() || len(r.buf) > 256<<10 {
		t.Fatalf("storage %d holding %d", len(r.buf), r.len())
	}
}
