package sim

import (
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// BenchmarkBulk moves 1 MB from a to b over a 1 ms link, untraced: the
// simulator's hot loop (build, link, parse, demux, Input) per packet.
func BenchmarkBulk(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w := New(1)
		ha := w.NewHost("a", addrA, tcp.Config{})
		hb := w.NewHost("b", addrB, tcp.Config{})
		w.Link(ha, hb, LinkConfig{Delay: time.Millisecond}, LinkConfig{Delay: time.Millisecond})
		hb.Listen(80)
		c, _ := ha.Dial(hb.AddrPort(80))
		c.Write(data)
		c.Close()
		w.RunUntilIdle(time.Hour)
		if got := len(hb.Conns()[0].Received()); got != len(data) {
			b.Fatalf("received %d", got)
		}
	}
}
