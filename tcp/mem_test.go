package tcp

import (
	"testing"
	"time"
	"unsafe"
)

// TestIdleHoldsNoBuffers: once everything sent is acknowledged and
// everything received is read, neither end holds queue storage, a SACK
// scoreboard, an out-of-order record or (while no data was sent) a
// congestion controller; and the storage comes back when data flows again.
func TestIdleHoldsNoBuffers(t *testing.T) {
	now, ca, cb, la, lb := loopPair(t, &Config{})
	if ca.cc != nil || cb.cc != nil {
		t.Fatalf("congestion controllers made before any data: %v, %v", ca.cc, cb.cc)
	}
	if !ca.ccOn || !cb.ccOn {
		t.Fatal("congestion control not started after the handshake")
	}
	if got, want := ca.Status().Cwnd, 10*ca.sndMSS; got != want {
		t.Fatalf("cwnd before any data = %d, want the initial window %d", got, want)
	}
	sink := make([]byte, 64<<10)
	for round, size := range []int{100, 20 << 10, 100} {
		if n, err := ca.Write(now, make([]byte, size)); n != size || err != nil {
			t.Fatalf("round %d: Write = %d, %v", round, n, err)
		}
		settle(&now, 100*time.Millisecond, la, lb)
		got := 0
		for cb.Readable() > 0 {
			n, _ := cb.Read(now, sink)
			got += n
		}
		settle(&now, 100*time.Millisecond, la, lb)
		if got != size {
			t.Fatalf("round %d: read %d bytes, want %d", round, got, size)
		}
		for _, c := range []*Conn{ca, cb} {
			if c.snd.buf != nil || c.rcv.buf != nil {
				t.Fatalf("round %d: idle connection holds %d B of send and %d B of receive storage",
					round, len(c.snd.buf), len(c.rcv.buf))
			}
			if c.sacked.p != nil || c.ooo.p != nil {
				t.Fatalf("round %d: idle connection holds range sets", round)
			}
		}
		if round == 1 && ca.cc == nil {
			// Small answers are application-limited: the algorithm
			// need not exist for them; a window's worth needs it.
			t.Fatalf("round %d: no congestion controller after sending %d B", round, size)
		}
	}
	t.Logf("unsafe.Sizeof(Conn{}) = %d", unsafe.Sizeof(Conn{}))
}

// TestConnSize keeps the Conn within 760 bytes: with the 8-byte header Go
// puts on larger objects with pointers, it then fits the 768-byte size
// class. A field added beyond that costs every connection 128 bytes more.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 760 {
		t.Errorf("unsafe.Sizeof(Conn{}) = %d, want at most 760", n)
	}
}
