package sim

import (
	"runtime"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// BenchmarkBulk moves 1 MB from a to b over a perfect 1 ms link, untraced:
// the simulator's hot loop (build, link, parse, demux, Input, Read) per
// packet, on a connection that stays open, so what is measured is the
// steady state. allocs/seg is heap allocations per packet on the wire
// (data and ACKs both); it should be 0.
func BenchmarkBulk(b *testing.B) { benchBulk(b, 0) }

// BenchmarkBulkLoss1 is BenchmarkBulk over a link that loses 1% of the
// packets each way: the recovery paths (retransmission, reassembly, SACK)
// run too.
func BenchmarkBulkLoss1(b *testing.B) { benchBulk(b, 0.01) }

// BenchmarkBulkOnce is a whole run per iteration: a World, a handshake, 1
// MB, the close and TIME-WAIT. It shows the cost of setting things up,
// which the steady-state benchmarks leave out.
func BenchmarkBulkOnce(b *testing.B) {
	const size = 1 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		w := New(1)
		ha := w.NewHost("a", addrA, tcp.Config{})
		hb := w.NewHost("b", addrB, tcp.Config{})
		w.Link(ha, hb, LinkConfig{Delay: time.Millisecond}, LinkConfig{Delay: time.Millisecond})
		hb.Listen(80)
		c, _ := ha.Dial(hb.AddrPort(80))
		c.WriteStream(size, nil)
		c.Close()
		w.RunUntilIdle(time.Hour)
		if got := hb.Conns()[0].ReceivedLen(); got != size {
			b.Fatalf("received %d", got)
		}
	}
}

func benchBulk(b *testing.B, loss float64) {
	const chunk = 1 << 20
	w, src, dst := bulkPair(b, loss)
	b.SetBytes(chunk)
	b.ReportAllocs()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	pkts0 := w.Stats.Sent
	total := dst.ReceivedLen()
	for b.Loop() {
		total += chunk
		src.WriteStream(chunk, nil)
		if !w.RunUntil(w.Elapsed()+time.Hour, func() bool { return dst.ReceivedLen() >= total }) {
			b.Fatalf("only %d of %d bytes arrived", dst.ReceivedLen(), total)
		}
	}
	runtime.ReadMemStats(&m1)
	if pkts := w.Stats.Sent - pkts0; pkts > 0 {
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(pkts), "allocs/seg")
		b.ReportMetric(float64(pkts)/float64(b.N), "segs/op")
	}
}

// bulkPair returns an untraced World with an established connection from
// a to b over a 1 ms link losing loss of the packets each way, and a
// first megabyte already moved so buffers and queues have their size.
// The receiver reads everything and keeps nothing.
func bulkPair(tb testing.TB, loss float64) (w *World, src, dst *Conn) {
	return bulkPairCC(tb, loss, "")
}

// bulkPairCC is bulkPair with the congestion control cc.
func bulkPairCC(tb testing.TB, loss float64, cc string) (w *World, src, dst *Conn) {
	w = New(1)
	ha := w.NewHost("a", addrA, tcp.Config{CongestionControl: cc})
	hb := w.NewHost("b", addrB, tcp.Config{CongestionControl: cc})
	link := LinkConfig{Delay: time.Millisecond, Loss: loss}
	w.Link(ha, hb, link, link)
	src, accepted := streamTo(tb, ha, hb)
	src.WriteStream(1<<20, func(off int64, p []byte) {})
	if !w.RunUntil(time.Hour, func() bool { return *accepted != nil && (*accepted).ReceivedLen() == 1<<20 }) {
		tb.Fatal("the first megabyte did not arrive")
	}
	return w, src, *accepted
}

// streamTo has b accept a connection on port 80 and read all it gets
// into nothing, and dials it from a. It returns the dialing end and where
// the accepted end is put once the handshake completes.
func streamTo(tb testing.TB, a, b *Host) (src *Conn, accepted **Conn) {
	accepted = new(*Conn)
	b.Listen(80)
	b.OnAccept(func(c *Conn) {
		*accepted = c
		c.OnRead(func([]byte) {})
	})
	src, err := a.Dial(b.AddrPort(80))
	if err != nil {
		tb.Fatal(err)
	}
	return src, accepted
}

// TestSteadyStateAllocs checks what the benchmarks report: once a
// connection is moving data, an untraced run allocates nothing per
// packet, in the simulator or in tcp, with or without loss, with CUBIC
// and with BBR's rate samples and pacing.
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a quiet run")
	}
	for _, run := range []struct {
		loss float64
		cc   string
	}{{0, "cubic"}, {0.01, "cubic"}, {0, "bbr"}, {0.01, "bbr"}} {
		loss := run.loss
		w, src, dst := bulkPairCC(t, loss, run.cc)
		total := dst.ReceivedLen()
		pkts := w.Stats.Sent
		const chunk = 256 << 10
		allocs := testing.AllocsPerRun(4, func() {
			total += chunk
			src.WriteStream(chunk, nil)
			if !w.RunUntil(w.Elapsed()+time.Hour, func() bool { return dst.ReceivedLen() >= total }) {
				t.Fatalf("%s, loss %v: only %d of %d bytes arrived", run.cc, loss, dst.ReceivedLen(), total)
			}
		})
		perRun := float64(w.Stats.Sent-pkts) / 5 // AllocsPerRun runs f once more to warm up
		if perSeg := allocs / perRun; perSeg > 0.01 {
			t.Errorf("%s, loss %v: %.0f allocations for %.0f packets: %.3f a packet, want none", run.cc, loss, allocs, perRun, perSeg)
		}
	}
}
