package track

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/track/capture"
)

// TestStampRoundTrip checks that every time stored as a stamp reads back
// exactly: whole microseconds or a few nanoseconds after the first packet
// inline, anything else (before the first packet, too far after it) in
// the extension.
func TestStampRoundTrip(t *testing.T) {
	first := time.Date(2024, 1, 1, 0, 0, 0, 123456000, time.UTC).UnixNano()
	for _, tc := range []struct {
		t      int64
		inline bool
	}{
		{0, true},
		{first, true},
		{first + 1000, true},
		{first + 3*3600*1e9, false}, // three hours: past 31 bits of microseconds
		{first + 1000*maxMicros, true},
		{first + 1000*(maxMicros+1), false},
		{first + 1, true}, // nanoseconds
		{first + 999_999, true},
		{first + maxNanos, true},
		{first + maxNanos + 1, false},
		{first + 3*1e9 + 7, false}, // three seconds in nanoseconds
		{first - 1000, false},
		{1, false},
	} {
		c := Conn{first: first}
		s := c.toStamp(tc.t, farLast)
		if got := c.time(s, farLast); got != tc.t {
			t.Errorf("%d: read back %d (stamp %d)", tc.t-first, got, s)
		}
		if inline := s != stampFar; inline != tc.inline {
			t.Errorf("%d: inline %v, want %v", tc.t-first, inline, tc.inline)
		}
		if (c.x != nil) == tc.inline {
			t.Errorf("%d: extension %v", tc.t-first, c.x != nil)
		}
	}
}

// TestFarTimes follows a connection whose times are in nanoseconds and
// hours apart, so that the later ones are no stamps, and one whose times
// are whole microseconds, as far apart: both show exactly the times of
// their packets.
func TestFarTimes(t *testing.T) {
	for _, ns := range []time.Duration{0, 7} {
		tr := New(Config{})
		c, s := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
		now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(ns)
		feed := func(after time.Duration, c2s bool, f header.TCPFlags, seq, ack uint32) time.Time {
			now = now.Add(after)
			p := &capture.Packet{T: now, Src: c, Dst: s, Flags: f, Seq: seqnum.Value(seq), Ack: seqnum.Value(ack), Window: 1000}
			if !c2s {
				p.Src, p.Dst = s, c
			}
			tr.Feed(p)
			return now
		}
		first := feed(0, true, header.SYN, 100, 0)
		feed(time.Millisecond+ns, false, header.SYN|header.ACK, 500, 101)
		feed(time.Millisecond, true, header.ACK, 101, 501)
		serverFin := feed(2*time.Hour+ns, false, header.FIN|header.ACK, 501, 101)
		v := tr.Snapshot(now)[0]
		if v.ClientState != tcp.CloseWait || !v.CloseWaitSince.Equal(serverFin) || !v.First.Equal(first) || !v.Last.Equal(serverFin) {
			t.Fatalf("ns %d: %v since %v, first %v last %v; want CLOSE-WAIT since %v, first %v",
				ns, v.ClientState, v.CloseWaitSince, v.First, v.Last, serverFin, first)
		}
		feed(ns, true, header.ACK, 101, 502)
		clientFin := feed(time.Hour, true, header.FIN|header.ACK, 101, 502)
		last := feed(time.Millisecond+ns, false, header.ACK, 502, 102)
		v = tr.Snapshot(now)[0]
		if v.ServerState != tcp.TimeWait || !v.TimeWaitSince.Equal(clientFin) || !v.Last.Equal(last) {
			t.Fatalf("ns %d: server %v since %v, last %v; want TIME-WAIT since %v, last %v",
				ns, v.ServerState, v.TimeWaitSince, v.Last, clientFin, last)
		}
		if cn := tr.Conns()[0]; !cn.usesFar() {
			t.Errorf("ns %d: no time held in the extension", ns)
		}
	}
}

// TestSlabReuse streams many short connections through a tracker with
// Config.Done: the slots of those handed over are reused, so the slab
// stays as big as the connections alive at once, and a reused slot
// starts afresh (each view counts only its own packets).
func TestSlabReuse(t *testing.T) {
	const n = 20000
	var done, bad int
	tr := New(Config{Done: func(v *ConnView) {
		done++
		if v.Packets != [2]uint64{3, 1} || v.ClientState != tcp.Closed || v.ServerState != tcp.Closed || v.RSTs != [2]uint64{1, 0} {
			bad++
		}
	}})
	srv := netip.MustParseAddrPort("192.0.2.1:443")
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0a000000+uint32(i))
		cl := netip.AddrPortFrom(netip.AddrFrom4(a), 40000)
		now = now.Add(10 * time.Millisecond)
		for _, p := range []capture.Packet{
			{T: now, Src: cl, Dst: srv, Flags: header.SYN, Seq: 100},
			{T: now, Src: srv, Dst: cl, Flags: header.SYN | header.ACK, Seq: 500, Ack: 101},
			{T: now, Src: cl, Dst: srv, Flags: header.ACK, Seq: 101, Ack: 501},
			{T: now, Src: cl, Dst: srv, Flags: header.RST, Seq: 101},
		} {
			tr.Feed(&p)
		}
	}
	tr.Flush(now.Add(time.Minute))
	if done != n || bad != 0 || len(tr.Conns()) != 0 {
		t.Fatalf("%d handed over (%d wrong), %d held; want %d, 0 wrong, 0 held", done, bad, len(tr.Conns()), n)
	}
	// RST ends a connection at once, conntrack and IPVS hold it 10 s:
	// about 1000 alive at a time, plus those not yet swept.
	if tr.slab.used > n/4 {
		t.Errorf("%d slots for %d connections: the slots are not reused", tr.slab.used, n)
	}
}
