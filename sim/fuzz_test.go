package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// FuzzTransfer runs a request and a reply with closes over a link whose
// impairments, and connections whose settings (knobs: window scale,
// timestamps, SACK, Nagle, delayed ACKs, congestion control, buffer
// sizes, asymmetric delay), the fuzzer picks. The checker of the property
// tests watches every segment and event. Whatever the network does, no byte may
// arrive that was not sent, in order; the World must go idle; and both
// connections must end, either cleanly with all data delivered or with
// an error (or, with nothing to send, stay open for a peer that gave up).
func FuzzTransfer(f *testing.F) {
	f.Add(uint64(1), uint8(10), uint8(5), uint8(5), uint8(5), uint16(3000), uint16(500), uint32(0))
	f.Add(uint64(2), uint8(0), uint8(0), uint8(0), uint8(0), uint16(0), uint16(0), uint32(0))
	f.Add(uint64(3), uint8(60), uint8(30), uint8(30), uint8(30), uint16(20000), uint16(100), uint32(0))
	f.Add(uint64(4), uint8(20), uint8(5), uint8(20), uint8(5), uint16(40000), uint16(1460), uint32(0xffffffff))
	f.Add(uint64(5), uint8(5), uint8(0), uint8(0), uint8(0), uint16(65535), uint16(1000), uint32(0x5a5a5a5a))
	f.Fuzz(func(t *testing.T, seed uint64, loss, dup, reorder, corrupt uint8, size, mss uint16, knobs uint32) {
		pct := func(v uint8) float64 { return float64(v%80) / 100 }
		cfg := LinkConfig{
			Delay: 5 * time.Millisecond, Jitter: time.Millisecond,
			Loss: pct(loss), Duplicate: pct(dup), Reorder: pct(reorder), Corrupt: pct(corrupt),
			ReorderDelay: 7 * time.Millisecond,
		}
		back := cfg
		back.Delay = time.Duration(1+knobs>>24&0x3f) * time.Millisecond
		ca, cb := fuzzConfig(mss, knobs), fuzzConfig(mss, knobs>>12)
		w := New(seed)
		k := newChecker(w)
		w.SetTap(k)
		a := w.NewHost("a", addrA, ca)
		b := w.NewHost("b", addrB, cb)
		w.Link(a, b, cfg, back)
		b.Listen(80)
		req := bytes.Repeat([]byte("request."), int(size)/8+1)[:size]
		rep := bytes.Repeat([]byte("reply..."), int(size)/16+1)[:size/2]
		b.OnAccept(func(c *Conn) {
			c.OnState(func(c *Conn, from, to tcp.State) {
				// One step may take the connection from SYN-RECEIVED
				// straight to CLOSE-WAIT (the ACK, data and FIN in one
				// segment).
				if !from.Synchronized() && to.Synchronized() {
					c.Write(rep)
				}
				if to == tcp.CloseWait {
					c.Close()
				}
			})
		})
		c, err := a.Dial(b.AddrPort(80))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		c.Close()
		// Up to 79% of everything lost, duplicated, reordered or damaged,
		// with the RTO backed off to its 120 s cap, is slow: a transfer
		// may take days of virtual time (a few thousand timer events).
		w.RunUntil(30*24*time.Hour, func() bool { return w.Stats.Sent > 1_000_000 })
		if w.Stats.Sent > 1_000_000 {
			t.Fatalf("a packet storm: %d packets by %v", w.Stats.Sent, w.Elapsed())
		}
		if w.Pending() {
			st := c.TCP().Status()
			t.Fatalf("still busy after 30 days: client %v, %d of %d bytes sent acknowledged, RTO %v after %d retransmissions in a row",
				c.State(), int(st.SndUna-st.ISS)-1, len(req), st.RTO, st.Retransmits)
		}
		if k.nerr > 0 {
			t.Fatalf("invariants broken:\n%s", strings.Join(k.errs, "\n"))
		}
		if !bytes.HasPrefix(rep, c.Received()) {
			t.Fatalf("client received bytes that were not sent")
		}
		// A side whose peer gave up may be left open for ever when it has
		// nothing to send: RFC 9293 gives ESTABLISHED and FIN-WAIT-2 no
		// timer (keep-alives and Linux's tcp_fin_timeout are extras). With
		// something unacknowledged it must retransmit, and end.
		peerFailed := len(b.Conns()) > 0
		for _, sc := range b.Conns() {
			peerFailed = peerFailed && sc.Err() != nil
		}
		stranded := func(c *Conn, peerFailed bool) bool {
			return peerFailed && c.State().Synchronized() && c.TCP().SendQueued() == 0 && c.TCP().Deadline().IsZero()
		}
		if c.State() != tcp.Closed && !stranded(c, peerFailed) {
			t.Fatalf("client ended in %v", c.State())
		}
		if c.State() == tcp.Closed && c.Err() == nil && !bytes.Equal(c.Received(), rep) {
			t.Fatalf("client closed cleanly with %d of %d bytes", len(c.Received()), len(rep))
		}
		for _, sc := range b.Conns() {
			if !bytes.HasPrefix(req, sc.Received()) {
				t.Fatalf("server received bytes that were not sent")
			}
			if sc.State() != tcp.Closed && !stranded(sc, c.Err() != nil) {
				t.Fatalf("server connection ended in %v", sc.State())
			}
			if sc.Err() == nil && sc.State() == tcp.Closed && sc.EOF() && !bytes.Equal(sc.Received(), req) {
				t.Fatalf("server closed cleanly with %d of %d bytes", len(sc.Received()), len(req))
			}
		}
	})
}

// fuzzConfig makes a host's settings from the low 12 bits of knobs: one
// bit each for window scale, timestamps, SACK and Nagle off, two for the
// ACK delay, two for the congestion control (bits 6 and 11; bit 11 picks
// BBR), and two each for the send and receive buffers' sizes.
func fuzzConfig(mss uint16, knobs uint32) tcp.Config {
	buffers := [4]int{0, 1024, 8 << 10, 1 << 20}
	return tcp.Config{
		MSS:               max(mss%1461, 64),
		NoWindowScale:     knobs&1 != 0,
		NoTimestamps:      knobs&2 != 0,
		NoSACK:            knobs&4 != 0,
		NoDelay:           knobs&8 != 0,
		AckDelay:          [4]time.Duration{0, -1, 10 * time.Millisecond, 200 * time.Millisecond}[knobs>>4&3],
		CongestionControl: [4]string{"cubic", "newreno", "bbr", "bbr"}[knobs>>6&1|knobs>>10&2],
		SendBuffer:        buffers[knobs>>7&3],
		ReceiveBuffer:     buffers[knobs>>9&3],
	}
}
