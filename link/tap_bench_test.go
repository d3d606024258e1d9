package link_test

import (
	"bufio"
	"io"
	"testing"

	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/pipe"
)

// BenchmarkTap writes 1500-byte packets through a tapped pipe and reads
// them back, recording both directions to a buffered io.Discard.
func BenchmarkTap(b *testing.B) {
	a, z := pipe.New(pipe.Config{})
	defer z.Close()
	tap := link.Tap(a, bufio.NewWriterSize(io.Discard, 1<<16))
	defer tap.Close()
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
		tap.WritePackets(pkts[:n])
		z.ReadPackets(bufs[:n], sizes)
	}
	if err := tap.Err(); err != nil {
		b.Fatal(err)
	}
}
