package pipe

import (
	"testing"
)

// BenchmarkPipe moves 1500-byte packets through a pipe with no
// impairments, a writer goroutine sending batches of batch packets and
// the reader taking up to 64 at a time, and reports packets delivered per
// second.
// Allocations are per packet (b.N counts packets).
func BenchmarkPipe(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
		block bool
	}{
		{"batch=1", 1, true},
		{"batch=32", 32, true},
		{"batch=32/drop", 32, false},
	} {
		b.Run(c.name, func(b *testing.B) { benchPipe(b, c.batch, c.block) })
	}
}

func benchPipe(b *testing.B, batch int, block bool) {
	a, z := New(Config{Block: block})
	defer a.Close()
	pkts := make([][]byte, batch)
	for i := range pkts {
		pkts[i] = make([]byte, 1500)
		pkts[i][0] = 0x45
	}
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, len(bufs))
	// Warm the pipe's buffers up before counting.
	a.WritePackets(pkts)
	z.ReadPackets(bufs, sizes)

	b.SetBytes(1500)
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan int)
	go func() {
		got := 0
		for {
			n, err := z.ReadPackets(bufs, sizes)
			if err != nil {
				done <- got
				return
			}
			got += n
		}
	}()
	for sent := 0; sent < b.N; sent += batch {
		a.WritePackets(pkts[:min(batch, b.N-sent)])
	}
	// Wait until the reader has drained the queue (or everything left
	// has been dropped), then stop it.
	for a.Stats().Queued > 0 {
	}
	b.StopTimer()
	z.Close()
	got := <-done
	// Count what arrived: in drop mode a writer faster than the reader
	// loses the rest, and the drop rate says how much.
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(100*float64(b.N-got)/float64(b.N), "%dropped")
	if s := a.Stats(); block && (got != b.N || s.Dropped() != 0) {
		b.Fatalf("read %d of %d packets; stats %+v", got, b.N, s)
	}
}

// BenchmarkPipeSerial writes a batch and reads it back on one goroutine:
// the pipe's own cost per packet, without the scheduler.
func BenchmarkPipeSerial(b *testing.B) {
	a, z := New(Config{})
	defer a.Close()
	defer z.Close()
	const batch = 32
	pkts := make([][]byte, batch)
	bufs := make([][]byte, batch)
	for i := range pkts {
		pkts[i] = make([]byte, 1500)
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, batch)
	b.SetBytes(1500)
	b.ReportAllocs()
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		a.WritePackets(pkts[:n])
		z.ReadPackets(bufs[:n], sizes)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
