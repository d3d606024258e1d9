package stack

import (
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// raw is a test peer that speaks in hand-built packets: the stack under
// test on one end of a pipe, raw on the other.
type raw struct {
	t   *testing.T
	ep  link.Endpoint
	src netip.Addr
}

func newRaw(t *testing.T, opts Options) (*raw, *Stack) {
	t.Helper()
	ea, eb := pipe.New(pipe.Config{})
	opts.Addrs = []netip.Prefix{addrB, addr6B}
	s, err := New(eb, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		ea.Close()
	})
	return &raw{t: t, ep: ea, src: addrA.Addr()}, s
}

func (r *raw) send(sport, dport uint16, seg tcp.Segment) {
	r.t.Helper()
	b := make([]byte, 2000)
	f := header.TCPFields{SrcPort: sport, DstPort: dport, Seq: seg.Seq, Ack: seg.Ack, Flags: seg.Flags, Window: seg.Window}
	n, err := header.BuildPacket(b, r.src, addrB.Addr(), 64, &f, &seg.Options, seg.Payload)
	if err != nil {
		r.t.Fatal(err)
	}
	r.ep.WritePackets([][]byte{b[:n]})
}

// recv reads the next packet, within a second, as a TCP segment.
func (r *raw) recv() (header.Packet, tcp.Segment) {
	r.t.Helper()
	type res struct {
		b []byte
		n int
	}
	ch := make(chan res, 1)
	go func() {
		bufs := [][]byte{make([]byte, 2000)}
		sizes := []int{0}
		if n, err := r.ep.ReadPackets(bufs, sizes); err == nil && n == 1 {
			ch <- res{bufs[0], sizes[0]}
		}
	}()
	select {
	case x := <-ch:
		var p header.Packet
		if err := header.ParsePacket(x.b[:x.n], &p); err != nil {
			r.t.Fatalf("the stack sent a bad packet: %v", err)
		}
		seg := tcp.Segment{Seq: p.TCP.Seq(), Ack: p.TCP.Ack(), Flags: p.TCP.Flags(), Window: p.TCP.Window(), Payload: p.TCP.Payload()}
		p.TCP.Options(&seg.Options)
		return p, seg
	case <-time.After(2 * time.Second):
		r.t.Fatal("no packet from the stack")
	}
	return header.Packet{}, tcp.Segment{}
}

// TestSynCookies: with the SYN queue full, a listener answers with a SYN
// cookie and keeps nothing; the ACK that returns the cookie creates the
// connection, which Accept then returns (RFC 4987 §3.6).
func TestSynCookies(t *testing.T) {
	r, s := newRaw(t, Options{Backlog: 1})
	ln, err := s.ListenTCP(netip.AddrPortFrom(addrB.Addr(), 80), 0)
	if err != nil {
		t.Fatal(err)
	}
	syn := tcp.Segment{Seq: 1000, Flags: header.SYN, Window: 65535}
	syn.Options.MSS, syn.Options.HasMSS = 1460, true
	r.send(40001, 80, syn) // takes the one place in the SYN queue
	_, first := r.recv()
	r.send(40002, 80, syn) // the queue is full: a cookie
	_, cookie := r.recv()
	if first.Flags != header.SYN|header.ACK || cookie.Flags != header.SYN|header.ACK || cookie.Ack != 1001 {
		t.Fatalf("SYN,ACKs: %v / %v", first.Info(), cookie.Info())
	}
	if st := s.Stats(); st.SynCookiesSent != 1 {
		t.Fatalf("cookies sent: %d", st.SynCookiesSent)
	}
	if cookie.Options.HasTimestamps || cookie.Options.HasWindowScale || !cookie.Options.HasMSS {
		t.Fatalf("a cookie SYN,ACK offers %+v", cookie.Options)
	}
	// A forged cookie is refused with RST.
	r.send(40003, 80, tcp.Segment{Seq: 1001, Ack: cookie.Seq.Add(7), Flags: header.ACK, Window: 65535})
	if _, rst := r.recv(); rst.Flags&header.RST == 0 {
		t.Fatalf("a forged cookie drew %v", rst.Info())
	}
	// The real one completes the handshake, with data.
	r.send(40002, 80, tcp.Segment{Seq: 1001, Ack: cookie.Seq.Add(1), Flags: header.ACK | header.PSH, Window: 65535, Payload: []byte("hi")})
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != "10.0.0.1:40002" {
		t.Fatalf("accepted %v", c.RemoteAddr())
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if st := s.Stats(); st.SynCookiesValid != 1 || st.SynCookiesInvalid != 1 {
		t.Fatalf("cookie counters %+v", st)
	}
}

// TestResetForNoConnection: a segment for no connection and no listener
// is answered as RFC 9293 §3.10.7.1 says.
func TestResetForNoConnection(t *testing.T) {
	r, _ := newRaw(t, Options{})
	r.send(40001, 81, tcp.Segment{Seq: 5000, Flags: header.SYN, Window: 100})
	_, rst := r.recv()
	if rst.Flags != header.RST|header.ACK || rst.Seq != 0 || rst.Ack != 5001 {
		t.Fatalf("reply %v", rst.Info())
	}
	r.send(40001, 81, tcp.Segment{Seq: 5000, Ack: 777, Flags: header.ACK, Window: 100})
	_, rst = r.recv()
	if rst.Flags != header.RST || rst.Seq != 777 {
		t.Fatalf("reply %v", rst.Info())
	}
}

// TestTimeWaitReopen: a SYN with a higher sequence number reopens a
// connection sitting in TIME-WAIT on the listener's side (RFC 6191).
func TestTimeWaitReopen(t *testing.T) {
	r, s := newRaw(t, Options{TCP: tcp.Config{NoTimestamps: true, AckDelay: -1}})
	ln, _ := s.ListenTCP(netip.AddrPortFrom(addrB.Addr(), 80), 0)
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			c.Close() // the server closes first: TIME-WAIT on its side
		}
	}()
	open := func(isn seqnum.Value) tcp.Segment {
		r.send(40001, 80, tcp.Segment{Seq: isn, Flags: header.SYN, Window: 65535})
		_, synack := r.recv()
		if synack.Flags != header.SYN|header.ACK {
			t.Fatalf("no SYN,ACK: %v", synack.Info())
		}
		r.send(40001, 80, tcp.Segment{Seq: isn.Add(1), Ack: synack.Seq.Add(1), Flags: header.ACK, Window: 65535})
		return synack
	}
	synack := open(1000)
	_, fin := r.recv() // the server's FIN
	if fin.Flags&header.FIN == 0 {
		t.Fatalf("want the server's FIN, got %v", fin.Info())
	}
	r.send(40001, 80, tcp.Segment{Seq: 1001, Ack: synack.Seq.Add(2), Flags: header.ACK | header.FIN, Window: 65535})
	_, ack := r.recv()
	if ack.Flags != header.ACK {
		t.Fatalf("want the last ACK, got %v", ack.Info())
	}
	var tw *Conn
	for _, c := range s.Conns() {
		if c.Status().State == tcp.TimeWait {
			tw = c
		}
	}
	if tw == nil {
		t.Fatal("no connection in TIME-WAIT")
	}
	open(900000) // a new SYN beyond the old RCV.NXT
	s.mu.RLock()
	cur := s.conns[tw.id]
	s.mu.RUnlock()
	if cur == nil || cur == tw {
		t.Fatalf("the SYN did not open a new incarnation (table holds %p, old %p)", cur, tw)
	}
	if st := cur.Status(); st.IRS != 900000 {
		t.Fatalf("the new incarnation's IRS is %d", st.IRS)
	}
}

// TestPing: an ICMP echo request to the stack's address is answered.
func TestPing(t *testing.T) {
	r, s := newRaw(t, Options{})
	pkt := make([]byte, 28+8)
	msg := pkt[20:]
	msg[0] = 8 // echo request
	binary.BigEndian.PutUint16(msg[4:], 0x1234)
	binary.BigEndian.PutUint16(msg[6:], 7)
	copy(msg[8:], "pingpong")
	binary.BigEndian.PutUint16(msg[2:], header.FinishChecksum(header.Checksum(msg, 0)))
	header.PutIPv4(pkt, &header.IPv4Fields{Src: r.src, Dst: addrB.Addr(), Protocol: 1, TTL: 64, PayloadLen: len(msg)})
	r.ep.WritePackets([][]byte{pkt})
	bufs, sizes := [][]byte{make([]byte, 200)}, []int{0}
	done := make(chan struct{})
	go func() {
		r.ep.ReadPackets(bufs, sizes)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("no echo reply")
	}
	ip, err := header.ParseIPv4(bufs[0][:sizes[0]])
	if err != nil || ip.Protocol() != 1 || ip.Dst() != r.src {
		t.Fatalf("reply %v %v", ip, err)
	}
	rep := ip.Payload()
	if rep[0] != 0 || binary.BigEndian.Uint16(rep[6:]) != 7 || string(rep[8:]) != "pingpong" ||
		header.FinishChecksum(header.Checksum(rep, 0)) != 0 {
		t.Fatalf("echo reply % x", rep)
	}
	if s.Stats().ICMPEchoReplies != 1 {
		t.Fatal("echo reply not counted")
	}
}
