//go:build linux

package capture

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/link/tun"
)

// openLive opens a live capture inside ns and closes it when t ends.
func openLive(t *testing.T, ns *netns.NS, iface string, snaplen int) *Reader {
	t.Helper()
	var r *Reader
	if err := ns.Do(func() (err error) { r, err = OpenLive(iface, snaplen); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// collect reads r until stop says it has enough or the deadline passes,
// and returns copies of the packets.
func collect(t *testing.T, r *Reader, d time.Duration, stop func([]Packet) bool) []Packet {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	var out []Packet
	for !stop(out) {
		p, err := r.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("deadline passed with %d packets", len(out))
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *p)
	}
	return out
}

// exchange connects from client (inside nsA) to a listener at server
// (inside nsB), sends "hello", gets "world!" back, and closes both ends.
// It returns the client's local address.
func exchange(t *testing.T, nsA, nsB *netns.NS, server netip.AddrPort) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	if err := nsB.Do(func() (err error) { ln, err = net.Listen("tcp", server.String()); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err = c.Write([]byte("world!"))
		if err == nil {
			_, err = c.Read(buf) // the client's FIN
			if err == io.EOF {
				err = nil
			}
		}
		done <- err
	}()
	var c net.Conn
	if err := nsA.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", server.String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
}

// closed returns a stop function for collect: it reports whether pkts
// hold both FINs of the connection between a and b and a segment after
// the second (the last ACK).
func closed(a, b netip.AddrPort) func([]Packet) bool {
	return func(pkts []Packet) bool {
		fins := 0
		for _, p := range pkts {
			if p.Src != a && p.Src != b || p.Dst != a && p.Dst != b {
				continue
			}
			if fins == 2 {
				return true
			}
			if p.Flags.Has(header.FIN) {
				fins++
			}
		}
		return false
	}
}

// checkExchange checks the packets captured of one exchange between
// client and server, with full headers unless truncated, over a link
// whose MTU makes the kernel offer mss.
func checkExchange(t *testing.T, pkts []Packet, client, server netip.AddrPort, ifHdr int, truncated bool, mss uint16) {
	t.Helper()
	var conn []Packet
	for _, p := range pkts {
		if (p.Src == client && p.Dst == server) || (p.Src == server && p.Dst == client) {
			conn = append(conn, p)
		}
	}
	if len(conn) < 7 {
		t.Fatalf("only %d packets of %v <-> %v captured: %+v", len(conn), client, server, pkts)
	}
	syn, synack := conn[0], conn[1]
	if syn.Src != client || syn.Flags != header.SYN {
		t.Errorf("first packet %v %v, want a SYN from the client", syn.Src, syn.Flags)
	}
	if synack.Src != server || synack.Flags != header.SYN|header.ACK || synack.Ack != syn.Seq+1 {
		t.Errorf("second packet %v %v ack %d, want a SYN,ACK acknowledging %d", synack.Src, synack.Flags, synack.Ack, syn.Seq+1)
	}
	if !truncated {
		o := syn.Options
		if !o.HasMSS || !o.HasWindowScale || !o.SACKPermitted || !o.HasTimestamps {
			t.Errorf("the kernel's SYN lacks options: %+v", o)
		}
		if o.MSS != mss {
			t.Errorf("SYN MSS %d, want %d", o.MSS, mss)
		}
	}
	var sent, got int
	fins := 0
	for _, p := range conn {
		if p.Src == client {
			sent += p.PayloadLen
		} else {
			got += p.PayloadLen
		}
		if p.Flags.Has(header.FIN) {
			fins++
		}
		if p.Truncated != truncated {
			t.Errorf("Truncated = %v, want %v: %+v", p.Truncated, truncated, p)
		}
		ipHdr := 20
		if client.Addr().Is6() {
			ipHdr = 40
		}
		if want := ifHdr + ipHdr + 20 + (4 * 3) + p.PayloadLen; p.Flags&header.SYN == 0 && p.Wire != want {
			// Timestamps are on: every segment after the SYNs has a
			// 32-byte TCP header.
			t.Errorf("Wire = %d, want %d: %+v", p.Wire, want, p)
		}
		if time.Since(p.T) > time.Minute || time.Until(p.T) > time.Second {
			t.Errorf("timestamp %v is not now", p.T)
		}
	}
	if sent != 5 || got != 6 || fins != 2 {
		t.Errorf("payload %d bytes sent and %d received, %d FINs; want 5, 6, 2", sent, got, fins)
	}
}

// TestLiveVeth captures a real TCP exchange, over IPv4 and IPv6, on one
// end of a veth pair between two namespaces, once with full frames and
// once with a headers-only snap length.
func TestLiveVeth(t *testing.T) {
	nsA := netns.ForTest(t)
	nsB := netns.ForTest(t)
	nsA.MustRun(t, "ip", "link", "add", "cap0", "type", "veth", "peer", "name", "cap1")
	nsA.MustRun(t, "ip", "link", "set", "cap1", "netns", nsB.Name())
	for _, s := range []struct {
		ns     *netns.NS
		dev    string
		v4, v6 string
	}{{nsA, "cap0", "192.0.2.1/24", "2001:db8:c::1/64"}, {nsB, "cap1", "192.0.2.2/24", "2001:db8:c::2/64"}} {
		s.ns.MustRun(t, "ip", "addr", "add", s.v4, "dev", s.dev)
		s.ns.MustRun(t, "ip", "addr", "add", s.v6, "dev", s.dev, "nodad")
		s.ns.MustRun(t, "ip", "link", "set", s.dev, "up")
	}
	full := openLive(t, nsA, "cap0", 0)
	// Headers-only captures: Ethernet, IP and TCP without options.
	short4 := openLive(t, nsA, "cap0", 14+20+20)
	short6 := openLive(t, nsA, "cap0", 14+40+20)

	for _, round := range []struct {
		server netip.AddrPort
		short  *Reader
		mss    uint16
	}{
		{netip.MustParseAddrPort("192.0.2.2:8080"), short4, 1460},
		{netip.MustParseAddrPort("[2001:db8:c::2]:8080"), short6, 1440},
	} {
		client := exchange(t, nsA, nsB, round.server)
		pkts := collect(t, full, 5*time.Second, closed(client, round.server))
		checkExchange(t, pkts, client, round.server, 14, false, round.mss)
		pkts = collect(t, round.short, 5*time.Second, closed(client, round.server))
		checkExchange(t, pkts, client, round.server, 14, true, 0)
	}
	s := full.Stats()
	if s.NonTCP == 0 {
		t.Errorf("no ARP or neighbour discovery counted as non-TCP: %+v", s)
	}
	if read, _ := full.Progress(); read == 0 {
		t.Error("Progress counts no bytes")
	}
	// Close ends a Next that is waiting.
	errc := make(chan error, 1)
	full.SetReadDeadline(time.Time{})
	go func() {
		_, err := full.Next()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	full.Close()
	select {
	case err := <-errc:
		if err != io.EOF {
			t.Errorf("Next after Close: %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Close did not wake Next")
	}
}

// TestLiveLoopback captures on a loopback device, which frames packets
// with an Ethernet header and sees each twice (sent and received): each
// must be reported once.
func TestLiveLoopback(t *testing.T) {
	ns := netns.ForTest(t)
	r := openLive(t, ns, "lo", 0)
	server := netip.MustParseAddrPort("127.0.0.1:9090")
	client := exchange(t, ns, ns, server)
	pkts := collect(t, r, 5*time.Second, closed(client, server))
	checkExchange(t, pkts, client, server, 14, false, 65495)
	syns := 0
	for _, p := range pkts {
		if p.Flags == header.SYN {
			syns++
		}
	}
	if syns != 1 {
		t.Errorf("%d SYNs captured on lo, want 1", syns)
	}
}

// TestLiveTUN captures on a TUN device (ARPHRD_NONE: bare IP packets),
// where the kernel sends the SYN of a connection attempt.
func TestLiveTUN(t *testing.T) {
	ns := netns.ForTest(t)
	var d *tun.Device
	if err := ns.Do(func() (err error) { d, err = tun.Open("capt0", tun.Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ns.MustRun(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "capt0")
	ns.MustRun(t, "ip", "link", "set", "capt0", "up")
	r := openLive(t, ns, "capt0", 0)
	target := netip.MustParseAddrPort("198.51.100.9:9")
	go ns.Do(func() error {
		c, err := net.DialTimeout("tcp", target.String(), 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return nil
	})
	pkts := collect(t, r, 5*time.Second, func(p []Packet) bool {
		return len(p) > 0 && p[len(p)-1].Dst == target
	})
	p := pkts[len(pkts)-1]
	if p.Flags != header.SYN || p.Src.Addr() != netip.MustParseAddr("198.51.100.1") || !p.Options.HasMSS {
		t.Errorf("captured %+v, want the kernel's SYN from 198.51.100.1", p)
	}
	if want := 20 + 20 + 20 + p.PayloadLen; p.Wire != want {
		// MSS, SACK-permitted, timestamps, NOP and window scale: 20
		// bytes of options; no link-layer header on a TUN device.
		t.Errorf("Wire = %d, want %d", p.Wire, want)
	}
}
