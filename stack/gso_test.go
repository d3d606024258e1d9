package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/tun"
	"github.com/tcpstate/tcpstate/seqnum"
)

// segs builds TCP segments of one connection, partial checksums and all,
// as build does on a link with offloads: payload sizes as given, from
// sequence number 1000, flags per segment.
func segs(t *testing.T, src, dst netip.Addr, sizes []int, flags []header.TCPFlags) [][]byte {
	t.Helper()
	var out [][]byte
	seq := seqnum.Value(1000)
	for i, n := range sizes {
		payload := bytes.Repeat([]byte{byte('a' + i)}, n)
		f := header.TCPFields{SrcPort: 40000, DstPort: 80, Seq: seq, Ack: 9, Flags: flags[i], Window: 1000}
		o := header.TCPOptions{HasTimestamps: true, TSVal: 5, TSEcr: 6}
		b := make([]byte, 2000)
		m, err := header.BuildPacketPartial(b, src, dst, 64, &f, &o, payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[:m])
		seq = seq.Add(seqnum.Size(n))
	}
	return out
}

// TestGSORun joins a run of segments and cuts the result back as the
// kernel would (tun.VirtioNetHdr.Segment, modelled on tcp_gso_segment):
// the segments come back with valid checksums, their own sequence
// numbers, payloads and flags. Segments that may not join stop a run.
func TestGSORun(t *testing.T) {
	A, AP := header.ACK, header.ACK|header.PSH
	for _, v6 := range []bool{false, true} {
		src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		if v6 {
			src, dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
		}
		sizes := []int{1000, 1000, 1000, 1000, 300, 0}
		flags := []header.TCPFlags{A, AP, A, A, AP | header.FIN, A}
		pkts := segs(t, src, dst, sizes, flags)
		orig := make([][]byte, len(pkts))
		for i, p := range pkts {
			orig[i] = append([]byte(nil), p...)
		}
		j, mss := gsoRun(pkts, 0)
		if j != 5 || mss != 1000 {
			t.Fatalf("v6 %v: gsoRun = %d, %d; want 5, 1000 (the FIN ends the run)", v6, j, mss)
		}
		joinRun(pkts[:j])
		joined := bytes.Join(pkts[:j], nil)
		var h tun.VirtioNetHdr
		h.ForPacket(pkts[0], len(joined), mss)
		if err := h.Check(joined); err != nil {
			t.Fatalf("v6 %v: joined packet: %v", v6, err)
		}
		if h.Segments(joined) != 5 {
			t.Fatalf("v6 %v: %d segments", v6, h.Segments(joined))
		}
		for i := 0; i < 5; i++ {
			seg := make([]byte, 2000)
			m := h.Segment(joined, i, seg)
			var p, q header.Packet
			if err := header.ParsePacket(seg[:m], &p); err != nil {
				t.Fatalf("v6 %v: segment %d: %v", v6, i, err)
			}
			if err := header.ParsePacketTrusted(orig[i], &q); err != nil {
				t.Fatal(err)
			}
			wantFlags := q.TCP.Flags()
			if i < 4 {
				wantFlags &^= header.PSH // the kernel keeps PSH on the last segment only
			}
			if p.TCP.Seq() != q.TCP.Seq() || p.TCP.Flags() != wantFlags ||
				!bytes.Equal(p.TCP.Payload(), q.TCP.Payload()) || !bytes.Equal(p.TCP.OptionBytes(), q.TCP.OptionBytes()) {
				t.Errorf("v6 %v: segment %d: seq %d flags %v, %d bytes; sent seq %d flags %v, %d bytes",
					v6, i, p.TCP.Seq(), p.TCP.Flags(), len(p.TCP.Payload()), q.TCP.Seq(), wantFlags, len(q.TCP.Payload()))
			}
		}
		if j, _ := gsoRun(pkts, 5); j != 6 {
			t.Errorf("a pure ACK joined something: %d", j)
		}
	}

	// What stops a run.
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		name  string
		sizes []int
		flags []header.TCPFlags
		edit  func(p [][]byte)
		want  int
	}{
		{"short middle", []int{1000, 900, 1000}, []header.TCPFlags{A, A, A}, nil, 2},
		{"longer second", []int{900, 1000}, []header.TCPFlags{A, A}, nil, 1},
		{"SYN", []int{1000, 1000}, []header.TCPFlags{A | header.SYN, A}, nil, 1},
		{"CWR", []int{1000, 1000}, []header.TCPFlags{A, A | header.CWR}, nil, 1},
		{"gap", []int{1000, 1000}, []header.TCPFlags{A, A}, func(p [][]byte) { p[1][20+7]++ }, 1},
		{"window", []int{1000, 1000}, []header.TCPFlags{A, A}, func(p [][]byte) { p[1][20+15]++ }, 1},
		{"options", []int{1000, 1000}, []header.TCPFlags{A, A}, func(p [][]byte) { p[1][20+30]++ }, 1},
		{"ttl", []int{1000, 1000}, []header.TCPFlags{A, A}, func(p [][]byte) { p[1][8]++ }, 1},
		{"64 KiB", []int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
			nil, nil, 65},
	} {
		if tc.flags == nil {
			tc.flags = make([]header.TCPFlags, len(tc.sizes))
			for i := range tc.flags {
				tc.flags[i] = A
			}
		}
		p := segs(t, src, dst, tc.sizes, tc.flags)
		if tc.edit != nil {
			tc.edit(p)
		}
		if j, _ := gsoRun(p, 0); j != tc.want {
			t.Errorf("%s: run of %d, want %d", tc.name, j, tc.want)
		}
	}
}

// counting is a link.Offloader that counts what crosses it.
type counting struct {
	*tun.Device
	gsoWrites   atomic.Int64 // WriteOffload calls joining segments
	bigReads    atomic.Int64 // packets read longer than the MTU
	trustedRead atomic.Int64
	maxRead     atomic.Int64
}

func (c *counting) ReadPacketsOffload(bufs [][]byte, sizes []int, trusted []bool) (int, error) {
	n, err := c.Device.ReadPacketsOffload(bufs, sizes, trusted)
	for i := range n {
		if sizes[i] > c.MTU() {
			c.bigReads.Add(1)
		}
		if trusted[i] {
			c.trustedRead.Add(1)
		}
		if int64(sizes[i]) > c.maxRead.Load() {
			c.maxRead.Store(int64(sizes[i]))
		}
	}
	return n, err
}

func (c *counting) WriteOffload(pieces [][]byte, mss int) error {
	if mss > 0 {
		c.gsoWrites.Add(1)
	}
	return c.Device.WriteOffload(pieces, mss)
}

var _ link.Offloader = (*counting)(nil)

// TestOffloadOverTUN moves 4 MB each way between the stack and a kernel
// socket over a TUN device, with the kernel's offloads and without. With
// them, the stack must have read TCP segments longer than the MTU (so
// tcp.Conn took segments far above its MSS) and sent joined ones, and
// the data must arrive intact both ways; without them, the stack must
// say so in one log line and work all the same.
func TestOffloadOverTUN(t *testing.T) {
	for _, off := range []bool{true, false} {
		t.Run(fmt.Sprintf("offload=%v", off), func(t *testing.T) {
			ns := netns.ForTest(t)
			var dev *tun.Device
			if err := ns.Do(func() error {
				var err error
				dev, err = tun.Open("tcpsgso", tun.Options{NoOffload: !off})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if err := dev.Offload(); (err == nil) != off {
				t.Fatalf("Offload() = %v with offloads %v", err, off)
			}
			ns.MustRun(t, "ip", "addr", "add", "10.78.0.1/24", "dev", "tcpsgso")
			ns.MustRun(t, "ip", "link", "set", "tcpsgso", "up")
			c := &counting{Device: dev}
			var mu sync.Mutex
			var logs []string
			st, err := New(c, Options{
				Addrs: []netip.Prefix{netip.MustParsePrefix("10.78.0.2/24")},
				Logf: func(format string, args ...any) {
					mu.Lock()
					logs = append(logs, fmt.Sprintf(format, args...))
					mu.Unlock()
				},
			})
			if err != nil {
				dev.Close()
				t.Fatal(err)
			}
			defer st.Close()
			var ln net.Listener
			if err := ns.Do(func() error {
				var err error
				ln, err = net.Listen("tcp4", "10.78.0.1:7070")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()

			const size = 4 << 20
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*131 + i>>11)
			}
			srvErr := make(chan error, 1)
			go func() {
				srvErr <- func() error {
					k, err := ln.Accept()
					if err != nil {
						return err
					}
					defer k.Close()
					k.SetDeadline(time.Now().Add(30 * time.Second))
					got := make([]byte, size)
					if _, err := io.ReadFull(k, got); err != nil {
						return fmt.Errorf("kernel read: %w", err)
					}
					if !bytes.Equal(got, data) {
						return errors.New("the kernel received other bytes than the stack sent")
					}
					_, err = k.Write(data)
					return err
				}()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := st.DialTCP(ctx, netip.MustParseAddrPort("10.78.0.1:7070"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(data); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, size)
			if _, err := io.ReadFull(conn, got); err != nil {
				t.Fatalf("stack read: %v", err)
			}
			if err := <-srvErr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("the stack received other bytes than the kernel sent")
			}
			s := st.Stats()
			mu.Lock()
			defer mu.Unlock()
			t.Logf("GSO writes %d, reads above the MTU %d (largest %d B), trusted %d; stats in %d out %d, bad checksums %d; log %q",
				c.gsoWrites.Load(), c.bigReads.Load(), c.maxRead.Load(), c.trustedRead.Load(), s.InPackets, s.OutPackets, s.DropBadChecksum, logs)
			if off {
				if c.gsoWrites.Load() == 0 || c.bigReads.Load() == 0 || c.trustedRead.Load() == 0 {
					t.Error("with offloads, the stack neither sent nor received segments longer than the MTU")
				}
				if len(logs) != 0 {
					t.Errorf("log lines with offloads on: %q", logs)
				}
			} else {
				if c.gsoWrites.Load() != 0 || c.bigReads.Load() != 0 {
					t.Error("without offloads, a packet longer than the MTU crossed")
				}
				if len(logs) != 1 || !strings.Contains(logs[0], "offloads off") {
					t.Errorf("want one log line saying the offloads are off, got %q", logs)
				}
			}
			if s.DropBadChecksum != 0 || s.DropMalformed != 0 {
				t.Errorf("dropped: %d bad checksums, %d malformed", s.DropBadChecksum, s.DropMalformed)
			}
		})
	}
}
