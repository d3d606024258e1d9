package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// FuzzTransfer runs a request and a reply with closes over a link whose
// impairments the fuzzer picks. Whatever the network does, no byte may
// arrive that was not sent, in order; the World must go idle; and both
// connections must end, either cleanly with all data delivered or with
// an error (or, with nothing to send, stay open for a peer that gave up).
func FuzzTransfer(f *testing.F) {
	f.Add(uint64(1), uint8(10), uint8(5), uint8(5), uint8(5), uint16(3000), uint16(500))
	f.Add(uint64(2), uint8(0), uint8(0), uint8(0), uint8(0), uint16(0), uint16(0))
	f.Add(uint64(3), uint8(60), uint8(30), uint8(30), uint8(30), uint16(20000), uint16(100))
	f.Fuzz(func(t *testing.T, seed uint64, loss, dup, reorder, corrupt uint8, size, mss uint16) {
		pct := func(v uint8) float64 { return float64(v%80) / 100 }
		cfg := LinkConfig{
			Delay: 5 * time.Millisecond, Jitter: time.Millisecond,
			Loss: pct(loss), Duplicate: pct(dup), Reorder: pct(reorder), Corrupt: pct(corrupt),
			ReorderDelay: 7 * time.Millisecond,
		}
		w := New(seed)
		tc := tcp.Config{MSS: max(mss%1461, 64)}
		a := w.NewHost("a", addrA, tc)
		b := w.NewHost("b", addrB, tc)
		w.Link(a, b, cfg, cfg)
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
		if !w.RunUntilIdle(6 * time.Hour) {
			t.Fatalf("still busy after 6 hours: client %v", c.State())
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
