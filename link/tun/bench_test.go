//go:build linux

package tun

import (
	"encoding/binary"
	"github.com/tcpstate/tcpstate/header"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// echoRequest builds an ICMP echo request from src to dst with size
// bytes of payload.
func echoRequest(src, dst netip.Addr, id, seq uint16, size int) []byte {
	p := make([]byte, 28+size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = unix.IPPROTO_ICMP
	s4, d4 := src.As4(), dst.As4()
	copy(p[12:], s4[:])
	copy(p[16:], d4[:])
	binary.BigEndian.PutUint16(p[10:], header.FinishChecksum(header.Checksum(p[:20], 0)))
	p[20] = 8
	binary.BigEndian.PutUint16(p[24:], id)
	binary.BigEndian.PutUint16(p[26:], seq)
	for i := 28; i < len(p); i++ {
		p[i] = byte(i)
	}
	binary.BigEndian.PutUint16(p[22:], header.FinishChecksum(header.Checksum(p[20:], 0)))
	return p
}

// pinger writes echo requests to the kernel through d and reads the
// replies: a round trip through the kernel that involves nothing but
// the device.
type pinger struct {
	d     *Device
	req   [][]byte
	bufs  [][]byte
	sizes []int
}

func newPinger(d *Device, batch, size int) *pinger {
	p := &pinger{d: d, sizes: make([]int, batch)}
	for i := range batch {
		p.req = append(p.req, echoRequest(peerAddr, kernelAddr, 99, uint16(i), size))
		p.bufs = append(p.bufs, make([]byte, d.MTU()))
	}
	return p
}

// round sends the batch and waits for as many echo replies; it returns
// false if something else failed.
func (p *pinger) round() bool {
	if _, err := p.d.WritePackets(p.req); err != nil {
		return false
	}
	for got := 0; got < len(p.req); {
		n, err := p.d.ReadPackets(p.bufs, p.sizes)
		if err != nil {
			return false
		}
		for i := 0; i < n; i++ {
			if b := p.bufs[i]; p.sizes[i] >= 28 && b[0] == 0x45 && b[9] == unix.IPPROTO_ICMP && b[20] == 0 {
				got++
			}
		}
	}
	return true
}

// TestNoAllocs checks that reading and writing a warmed-up device
// allocates nothing.
func TestNoAllocs(t *testing.T) {
	ns, d := setup(t, "tcpst3", Options{})
	noIPv6(t, ns, d)
	p := newPinger(d, 4, 56)
	if !p.round() {
		t.Fatal("no echo replies")
	}
	if n := testing.AllocsPerRun(100, func() { p.round() }); n != 0 {
		t.Fatalf("%v allocations per round of 4 echo requests and replies, want 0", n)
	}
}

// BenchmarkEcho measures round trips through the kernel: the benchmark
// writes a batch of ICMP echo requests to the device and reads the
// kernel's replies. b.N counts packets written (and replies read).
func BenchmarkEcho(b *testing.B) {
	for _, c := range []struct {
		name        string
		batch, size int
	}{
		{"batch=1/size=56", 1, 56},
		{"batch=32/size=56", 32, 56},
		{"batch=32/size=1472", 32, 1472},
	} {
		b.Run(c.name, func(b *testing.B) {
			_, d := setupB(b)
			p := newPinger(d, c.batch, c.size)
			p.round()
			b.SetBytes(int64(28 + c.size))
			b.ReportAllocs()
			b.ResetTimer()
			for range (b.N + c.batch - 1) / c.batch {
				if !p.round() {
					b.Fatal("round trip failed")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
