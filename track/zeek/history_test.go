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
