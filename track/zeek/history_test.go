package zeek

import (
	"strings"
	"testing"
	"unsafe"
)

// TestHistoryPacking checks that the packed history gives back exactly the
// letters added, in order: every letter of the alphabet, histories longer
// than the inline part, and a byte outside the alphabet (which moves the
// rest to the allocation without reordering).
func TestHistoryPacking(t *testing.T) {
	if got := unsafe.Sizeof(Core{}); got != 40 {
		t.Errorf("Core is %d bytes, want 40", got)
	}
	for _, want := range []string{
		"", "S", "ShADadFf", histLetters, strings.Repeat("Tt", 20),
		"ShAD?dFf", "ShADadFfTtWw", "ShADadFfTtWwC", "^hSADadFfRr",
	} {
		f := flowRef{Core: &Core{}}
		for i := range len(want) {
			f.addLetter(want[i])
		}
		if got := f.history(); got != want {
			t.Errorf("added %q, history %q", want, got)
		}
		if got, exp := f.histSynThenRst(), synThenRst(want); got != exp {
			t.Errorf("%q: synThenRst %v, want %v", want, got, exp)
		}
		if inline := len(want) <= histInline && !strings.Contains(want, "?"); inline == f.overflowed() {
			t.Errorf("%q: overflowed %v", want, f.overflowed())
		}
	}
}

// TestCoreFeed checks that a Core whose holder keeps the rare part
// follows exactly as a Flow does, with the rare part allocated only when
// needed (here by 20 retransmissions and a second FIN beyond the first).
func TestCoreFeed(t *testing.T) {
	pkts := seq(hs, one(pk(Forward, PA, c0+1, s0+1, 100)))
	for range 20 {
		pkts = append(pkts, pk(Forward, PA, c0+1, s0+1, 100))
	}
	pkts = append(pkts, pk(Forward, FA, c0+101, s0+1, 0), pk(Forward, FA, c0+101, s0+1, 7))
	var f Flow
	var c Core
	var x *Rare
	for i, p := range pkts {
		f.Packet(p)
		x = c.Feed(p, DefaultLikelyServerPort, x)
		if i == len(hs)-1 && x != nil {
			t.Errorf("rare part allocated by the handshake")
		}
		if c.StateWith(x) != f.State() || c.HistoryWith(x) != f.History() || c.Flipped() != f.Flipped() {
			t.Fatalf("packet %d: core %s %q, flow %s %q", i, c.StateWith(x), c.HistoryWith(x), f.State(), f.History())
		}
	}
	if x == nil || f.History() != "ShADTTFF" {
		t.Errorf("history %q, rare part %v; want ShADTTFF and a rare part", f.History(), x != nil)
	}
}
