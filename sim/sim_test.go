package sim

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

const ms = time.Millisecond

var (
	addrA  = netip.MustParseAddr("192.0.2.1")
	addrB  = netip.MustParseAddr("192.0.2.2")
	addr6A = netip.MustParseAddr("2001:db8::1")
	addr6B = netip.MustParseAddr("2001:db8::2")
)

// pair builds a World with hosts a and b joined by a link with cfg both
// ways, b listening on port 80.
func pair(seed uint64, cfg LinkConfig, a, b netip.Addr) (*World, *Host, *Host, *Link, *trace.Log) {
	w := New(seed)
	log := &trace.Log{}
	w.SetTrace(log)
	ha := w.NewHost("a", a, tcp.Config{})
	hb := w.NewHost("b", b, tcp.Config{})
	l := w.Link(ha, hb, cfg, cfg)
	hb.Listen(80)
	return w, ha, hb, l, log
}

func TestHandshakeIPv4AndIPv6(t *testing.T) {
	for _, addrs := range [][2]netip.Addr{{addrA, addrB}, {addr6A, addr6B}} {
		w, a, b, _, _ := pair(1, LinkConfig{Delay: 5 * ms}, addrs[0], addrs[1])
		c, err := a.Dial(b.AddrPort(80))
		if err != nil {
			t.Fatal(err)
		}
		if !w.RunUntilIdle(time.Minute) {
			t.Fatal("not idle")
		}
		if c.State() != tcp.Established {
			t.Fatalf("%v: client %v", addrs, c.State())
		}
		if n := len(b.Conns()); n != 1 || b.Conns()[0].State() != tcp.Established {
			t.Fatalf("%v: server has %d conns", addrs, n)
		}
		if got := w.Elapsed(); got != 15*ms {
			t.Errorf("%v: handshake took %v, want 15ms (1.5 RTT)", addrs, got)
		}
		if c.ID().Local.Port() != FirstEphemeralPort {
			t.Errorf("first ephemeral port %d", c.ID().Local.Port())
		}
	}
}

func TestDataAndCloseRemovesConns(t *testing.T) {
	w, a, b, _, _ := pair(1, LinkConfig{Delay: 5 * ms}, addrA, addrB)
	b.OnAccept(func(c *Conn) {
		c.OnState(func(c *Conn, _, to tcp.State) {
			if to == tcp.CloseWait {
				c.Close()
			}
		})
	})
	c, _ := a.Dial(b.AddrPort(80))
	data := bytes.Repeat([]byte("0123456789"), 20000) // 200 kB: more than a window
	c.Write(data)
	c.Close()
	w.Run(time.Second)
	if c.State() != tcp.TimeWait {
		t.Fatalf("client %v, want TIME-WAIT", c.State())
	}
	if a.Lookup(c.ID()) != c {
		t.Error("a TIME-WAIT connection left the demultiplexer")
	}
	sc := b.Conns()[0]
	if !bytes.Equal(sc.Received(), data) {
		t.Errorf("server received %d bytes, want %d", len(sc.Received()), len(data))
	}
	if sc.State() != tcp.Closed || b.Lookup(sc.ID()) != nil {
		t.Errorf("server %v, still looked up: %v", sc.State(), b.Lookup(sc.ID()) != nil)
	}
	if !w.RunUntilIdle(5 * time.Minute) {
		t.Fatal("not idle")
	}
	if c.State() != tcp.Closed || a.Lookup(c.ID()) != nil || !c.Removed() {
		t.Errorf("client %v after 2MSL, removed %v", c.State(), c.Removed())
	}
	// The port is free again.
	c2, err := a.Dial(b.AddrPort(80))
	if err != nil || c2.ID().Local.Port() != FirstEphemeralPort+1 {
		t.Errorf("second dial: %v port %d", err, c2.ID().Local.Port())
	}
}

func TestResetForClosedPort(t *testing.T) {
	w, a, b, _, _ := pair(1, LinkConfig{Delay: ms}, addrA, addrB)
	c, _ := a.Dial(b.AddrPort(81))
	w.RunUntilIdle(time.Minute)
	if c.State() != tcp.Closed || c.Err() != tcp.ErrConnectionRefused {
		t.Errorf("client %v %v, want CLOSED, refused", c.State(), c.Err())
	}
	if w.Stats.Resets != 1 {
		t.Errorf("%d resets, want 1", w.Stats.Resets)
	}
}

func TestCorruptionIsCaught(t *testing.T) {
	w, a, b, l, log := pair(3, LinkConfig{Delay: ms}, addrA, addrB)
	l.Dir(a).SetConfig(LinkConfig{Delay: ms, Corrupt: 1})
	c, _ := a.Dial(b.AddrPort(80))
	w.Run(10 * time.Second)
	if c.State() != tcp.SynSent {
		t.Errorf("client %v, want SYN-SENT: every SYN is corrupted", c.State())
	}
	if w.Stats.Corrupted == 0 || w.Stats.BadPackets != w.Stats.Corrupted || w.Stats.Delivered != 0 {
		t.Errorf("stats %+v", w.Stats)
	}
	for _, r := range log.Records {
		if r.Kind == trace.KindBadPacket && !strings.Contains(r.Text, "checksum") {
			t.Errorf("bad packet for another reason: %s", r.Text)
		}
	}
}

func TestDuplicateAndLoss(t *testing.T) {
	w, a, b, l, _ := pair(1, LinkConfig{Delay: ms}, addrA, addrB)
	l.Dir(a).SetConfig(LinkConfig{Delay: ms, Duplicate: 1})
	a.Dial(b.AddrPort(80))
	w.RunUntilIdle(time.Minute)
	// a's SYN and ACK arrive twice; the second SYN draws a second SYN,ACK
	// (RFC 9293 §3.10.7.4: a retransmitted SYN in SYN-RECEIVED), which a
	// acknowledges again.
	st := w.Stats
	if st.Duplicated != 3 || st.Delivered != st.Sent+st.Duplicated {
		t.Errorf("stats %+v, want 3 duplicated, each delivered twice", st)
	}
	w, a, b, l, _ = pair(1, LinkConfig{Delay: ms}, addrA, addrB)
	l.SetConfig(LinkConfig{Delay: ms, Loss: 1})
	c, _ := a.Dial(b.AddrPort(80))
	w.RunUntilIdle(time.Hour)
	if c.State() != tcp.Closed || c.Err() != tcp.ErrTimeout {
		t.Errorf("client %v %v, want timed out", c.State(), c.Err())
	}
	if w.Stats.Lost != 7 { // the SYN and 6 retries
		t.Errorf("%d lost, want 7", w.Stats.Lost)
	}
}

func TestDropIfNthAndDelayIf(t *testing.T) {
	w, a, b, l, log := pair(1, LinkConfig{Delay: 10 * ms}, addrA, addrB)
	l.Dir(b).DropIf(Nth(1, Flags(header.SYN|header.ACK)), "first SYN,ACK")
	c, _ := a.Dial(b.AddrPort(80))
	w.RunUntilIdle(time.Minute)
	if c.State() != tcp.Established || w.Stats.Filtered != 1 {
		t.Errorf("client %v, %d filtered", c.State(), w.Stats.Filtered)
	}
	found := false
	for _, r := range log.Records {
		if r.Kind == trace.KindFiltered && r.Text == "first SYN,ACK" && r.Seg.Flags == header.SYN|header.ACK {
			found = true
		}
	}
	if !found {
		t.Error("no filtered record for the SYN,ACK")
	}

	w, a, b, l, _ = pair(1, LinkConfig{Delay: 10 * ms}, addrA, addrB)
	l.Dir(a).DelayIf(Flags(header.SYN), 100*ms, "")
	a.Dial(b.AddrPort(80))
	w.RunUntilIdle(time.Minute)
	if got := w.Elapsed(); got != 130*ms {
		t.Errorf("handshake with a 100ms-delayed SYN ended at %v, want 130ms", got)
	}
}

func TestRateSerializes(t *testing.T) {
	w, a, b, l, log := pair(1, LinkConfig{Delay: ms}, addrA, addrB)
	a.Config().NoTimestamps = true // full segments carry no options
	b.Config().NoTimestamps = true
	l.Dir(a).SetConfig(LinkConfig{Delay: ms, Rate: 1_000_000}) // 1 MB/s: 1 µs a byte
	b.OnAccept(func(c *Conn) { c.SetAutoRead(true) })
	c, _ := a.Dial(b.AddrPort(80))
	w.Run(100 * ms)
	c.Write(make([]byte, 3*1460))
	w.RunUntilIdle(time.Minute)
	var arrivals []time.Duration
	for _, r := range log.Records {
		if r.Host == "b" && r.Kind == trace.KindSegmentIn && r.Seg.Len == 1460 {
			arrivals = append(arrivals, r.T)
		}
	}
	if len(arrivals) != 3 {
		t.Fatalf("%d full segments arrived", len(arrivals))
	}
	// 1460 bytes of payload, 20 of TCP and 20 of IPv4 header: 1.5 ms.
	for i := 1; i < 3; i++ {
		if d := arrivals[i] - arrivals[i-1]; d != 1500*time.Microsecond {
			t.Errorf("gap %d: %v, want 1.5ms", i, d)
		}
	}
}

func TestQueueLimitDrops(t *testing.T) {
	w, a, b, l, _ := pair(1, LinkConfig{Delay: ms}, addrA, addrB)
	c, _ := a.Dial(b.AddrPort(80))
	w.Run(100 * ms)
	l.Dir(a).SetConfig(LinkConfig{Delay: ms, Rate: 100_000, QueueLimit: 2})
	c.Write(make([]byte, 10*1460))
	w.RunUntilIdle(time.Hour)
	if w.Stats.QueueDrops == 0 {
		t.Error("no queue drops with a 2-packet queue")
	}
	if got := len(b.Conns()[0].Received()); got != 10*1460 {
		t.Errorf("received %d bytes, want all %d", got, 10*1460)
	}
}

func TestInjectAndUnreachable(t *testing.T) {
	w, a, b, _, log := pair(1, LinkConfig{Delay: ms}, addrA, addrB)
	spoofed := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.99"), 1234)
	a.Inject(spoofed, b.AddrPort(80), &tcp.Segment{Seq: 77, Flags: header.SYN, Window: 1000}, "spoofed SYN")
	w.Run(1500 * ms)
	if n := len(b.Conns()); n != 1 || b.Conns()[0].State() != tcp.SynReceived {
		t.Fatalf("server: %d conns", n)
	}
	// The SYN,ACK to the spoofed address leaves on b's only link and
	// vanishes at a, which does not have that address.
	if w.Stats.Injected != 1 || w.Stats.Unreachable != 2 { // the SYN,ACK and its first retransmission
		t.Errorf("stats %+v", w.Stats)
	}
	var kinds []string
	for _, r := range log.Records {
		if r.Kind == trace.KindInject || r.Kind == trace.KindUnreachable {
			kinds = append(kinds, string(r.Kind))
		}
	}
	if strings.Join(kinds, " ") != "inject unreachable unreachable" {
		t.Errorf("records %v", kinds)
	}
}

func TestOrderingAndClock(t *testing.T) {
	w := New(1)
	var got []int
	for i := range 5 {
		w.At(10*ms, func() { got = append(got, i) })
	}
	w.At(5*ms, func() {
		got = append(got, -1)
		w.After(5*ms, func() { got = append(got, 99) }) // same time, scheduled later
	})
	w.Run(7 * ms)
	if w.Elapsed() != 7*ms {
		t.Errorf("clock %v, want 7ms", w.Elapsed())
	}
	w.Run(20 * ms)
	want := []int{-1, 0, 1, 2, 3, 4, 99}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if !w.Now().Equal(Epoch.Add(20 * ms)) {
		t.Errorf("Now %v", w.Now())
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	run := func(seed uint64) []byte {
		var buf bytes.Buffer
		w := New(seed)
		w.SetTrace(trace.NewJSONWriter(&buf))
		a := w.NewHost("a", addrA, tcp.Config{})
		b := w.NewHost("b", addrB, tcp.Config{})
		w.Link(a, b, LinkConfig{Delay: 3 * ms, Jitter: ms, Loss: 0.2, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1},
			LinkConfig{Delay: 3 * ms, Jitter: ms, Loss: 0.2, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1})
		b.Listen(80)
		c, _ := a.Dial(b.AddrPort(80))
		c.Write(bytes.Repeat([]byte("x"), 20000))
		c.Close()
		b.OnAccept(func(c *Conn) {
			c.OnState(func(c *Conn, _, to tcp.State) {
				if to == tcp.CloseWait {
					c.Close()
				}
			})
		})
		w.RunUntilIdle(time.Hour)
		return buf.Bytes()
	}
	x, y, z := run(42), run(42), run(43)
	if !bytes.Equal(x, y) {
		t.Error("same seed, different bytes")
	}
	if bytes.Equal(x, z) {
		t.Error("different seeds, same bytes")
	}
}

func TestNoTraceSameRun(t *testing.T) {
	// Tracing must not change what happens: the same seed gives the same
	// statistics with and without a sink.
	run := func(trace bool) Stats {
		w := New(9)
		if trace {
			w.SetTrace(&traceLogDiscard{})
		}
		a := w.NewHost("a", addrA, tcp.Config{})
		b := w.NewHost("b", addrB, tcp.Config{})
		cfg := LinkConfig{Delay: 3 * ms, Loss: 0.2, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1}
		w.Link(a, b, cfg, cfg)
		b.Listen(80)
		c, _ := a.Dial(b.AddrPort(80))
		c.Write(bytes.Repeat([]byte("y"), 30000))
		w.RunUntilIdle(time.Hour)
		return w.Stats
	}
	if x, y := run(false), run(true); x != y {
		t.Errorf("untraced %+v\n  traced %+v", x, y)
	}
}

type traceLogDiscard struct{ n int }

func (d *traceLogDiscard) Emit(*trace.Record) { d.n++ }
