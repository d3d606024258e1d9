package tcp

import (
	"math/rand/v2"
	"testing"

	"github.com/tcpstate/tcpstate/seqnum"
)

// TestRangeSetModel checks the range set against a bitmap of the
// sequence space near a base that wraps around 2^32: random adds and
// trims, with contains, bytesAbove and the running total compared after
// each, and the ranges kept sorted, disjoint and not adjacent.
func TestRangeSetModel(t *testing.T) {
	const span = 4000
	base := seqnum.Value(1<<32 - 1500) // the space wraps inside the span
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var s ranges
		model := make([]bool, span)
		floor := 0 // everything below was trimmed
		for step := range 300 {
			if rng.IntN(8) == 0 {
				floor = min(floor+rng.IntN(200), span)
				s.trimBelow(base.Add(seqnum.Size(floor)))
				for i := range floor {
					model[i] = false
				}
			} else {
				a := floor + rng.IntN(span-floor+1)
				b := min(a+1+rng.IntN(60), span)
				if !s.add(base.Add(seqnum.Size(a)), base.Add(seqnum.Size(b))) {
					t.Fatalf("seed %d step %d: the set refused a range", seed, step)
				}
				for i := a; i < b; i++ {
					model[i] = true
				}
			}
			total := 0
			for _, in := range model {
				if in {
					total++
				}
			}
			if s.p != nil && s.p.total != total {
				t.Fatalf("seed %d step %d: total %d, model %d", seed, step, s.p.total, total)
			}
			for i := 1; i < s.len(); i++ {
				if !s.at(i - 1).end.LessThan(s.at(i).start) {
					t.Fatalf("seed %d step %d: ranges %v and %v not ordered and apart", seed, step, s.at(i-1), s.at(i))
				}
			}
			for i := 0; i < span; i += 1 + rng.IntN(40) {
				seq := base.Add(seqnum.Size(i))
				in, _ := s.contains(seq)
				if in != model[i] {
					t.Fatalf("seed %d step %d: contains(%d) = %v, model %v", seed, step, i, in, model[i])
				}
				above := 0
				for _, m := range model[i:] {
					if m {
						above++
					}
				}
				if got, _ := s.bytesAbove(seq); got != above {
					t.Fatalf("seed %d step %d: bytesAbove(%d) = %d, model %d", seed, step, i, got, above)
				}
			}
		}
	}
}
