package intern

import (
	"sync"
	"testing"
)

// TestTable: the first value is index 0, equal values share an index,
// new ones get the next, and concurrent use agrees.
func TestTable(t *testing.T) {
	type cfg struct{ a, b int }
	tb := New(cfg{1, 2})
	if i, ok := tb.Index(cfg{1, 2}); !ok || i != 0 {
		t.Fatalf("defaults at %d, %v", i, ok)
	}
	i, _ := tb.Index(cfg{3, 4})
	j, _ := tb.Index(cfg{3, 4})
	if i != 1 || j != 1 || *tb.At(1) != (cfg{3, 4}) {
		t.Fatalf("indexes %d %d for one value", i, j)
	}
	var wg sync.WaitGroup
	got := make([]uint16, 8)
	for k := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[k], _ = tb.Index(cfg{5, 6})
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] || *tb.At(g) != (cfg{5, 6}) {
			t.Fatalf("concurrent Index disagrees: %v", got)
		}
	}
}
