package header

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/tcpstate/tcpstate/seqnum"
)

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.2")
	v6a = netip.MustParseAddr("2001:db8::2")
	v6b = netip.MustParseAddr("2001:db8::1")
)

func TestParsePacketKnown(t *testing.T) {
	var p Packet
	if err := ParsePacket(mustHex(t, synV4), &p); err != nil {
		t.Fatal(err)
	}
	var o TCPOptions
	if err := p.TCP.Options(&o); err != nil {
		t.Fatal(err)
	}
	wantOpts := TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1000, HasTimestamps: true,
		WindowScale: 7, HasWindowScale: true}
	if p.Src != v4a || p.Dst != v4b || p.TTL != 64 || p.TCP.SrcPort() != 49152 || p.TCP.DstPort() != 80 ||
		p.TCP.Seq() != 0x01020304 || p.TCP.Flags() != SYN || p.TCP.Window() != 64240 || o != wantOpts ||
		len(p.TCP.Payload()) != 0 {
		t.Errorf("v4 SYN: %+v %+v", p, o)
	}

	if err := ParsePacket(mustHex(t, synAckV6), &p); err != nil {
		t.Fatal(err)
	}
	if err := p.TCP.Options(&o); err != nil {
		t.Fatal(err)
	}
	wantOpts = TCPOptions{MSS: 1440, HasMSS: true, SACKPermitted: true, TSVal: 0x11223344, TSEcr: 1000,
		HasTimestamps: true, WindowScale: 9, HasWindowScale: true}
	if p.Src != v6a || p.Dst != v6b || p.TTL != 64 || p.TCP.SrcPort() != 443 || p.TCP.DstPort() != 51000 ||
		p.TCP.Seq() != 0xfffffff0 || p.TCP.Ack() != 0x01020305 || p.TCP.Flags() != SYN|ACK ||
		p.TCP.Window() != 65535 || o != wantOpts {
		t.Errorf("v6 SYN-ACK: %+v %+v", p, o)
	}
}

// The builder must reproduce the independently computed packets byte for
// byte, both checksums included.
func TestBuildPacketKnown(t *testing.T) {
	buf := make([]byte, 100)
	n, err := BuildPacket(buf, v4a, v4b, 64,
		&TCPFields{SrcPort: 49152, DstPort: 80, Seq: 0x01020304, Flags: SYN, Window: 64240},
		&TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1000, HasTimestamps: true,
			WindowScale: 7, HasWindowScale: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, synV4); !bytes.Equal(buf[:n], want) {
		t.Errorf("v4 SYN:\n got %x\nwant %x", buf[:n], want)
	}
	n, err = BuildPacket(buf, v6a, v6b, 64,
		&TCPFields{SrcPort: 443, DstPort: 51000, Seq: 0xfffffff0, Ack: 0x01020305, Flags: SYN | ACK, Window: 65535},
		&TCPOptions{MSS: 1440, HasMSS: true, SACKPermitted: true, TSVal: 0x11223344, TSEcr: 1000,
			HasTimestamps: true, WindowScale: 9, HasWindowScale: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, synAckV6); !bytes.Equal(buf[:n], want) {
		t.Errorf("v6 SYN-ACK:\n got %x\nwant %x", buf[:n], want)
	}
}

// optionCombos returns every combination of options, with 0 to 4 SACK
// blocks.
func optionCombos() []TCPOptions {
	var out []TCPOptions
	for mask := range 16 {
		for nsack := 0; nsack <= MaxSACKBlocks; nsack++ {
			o := TCPOptions{
				MSS: 1220, HasMSS: mask&1 != 0,
				WindowScale: 14, HasWindowScale: mask&2 != 0,
				SACKPermitted: mask&4 != 0,
				TSVal:         0xdeadbeef, TSEcr: 0x0badf00d, HasTimestamps: mask&8 != 0,
				NumSACK: nsack,
			}
			if !o.HasMSS {
				o.MSS = 0
			}
			if !o.HasWindowScale {
				o.WindowScale = 0
			}
			if !o.HasTimestamps {
				o.TSVal, o.TSEcr = 0, 0
			}
			for i := range nsack {
				o.SACKBlocks[i] = SACKBlock{seqnum.Value(0xfffffff0 + 100*i), seqnum.Value(0xfffffff0 + 100*i + 50)}
			}
			out = append(out, o)
		}
	}
	return out
}

// keptSACK returns o as it parses back after PutTCPOptions.
func keptSACK(o TCPOptions) TCPOptions {
	_, n := optionLayout(&o)
	for i := n; i < MaxSACKBlocks; i++ {
		o.SACKBlocks[i] = SACKBlock{}
	}
	o.NumSACK = n
	return o
}

func TestBuildParseRoundTrip(t *testing.T) {
	payloads := [][]byte{nil, []byte("x"), []byte("hello, world"), bytes.Repeat([]byte{0xa5}, 1400)}
	addrs := []struct{ src, dst netip.Addr }{{v4a, v4b}, {v6a, v6b},
		{netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.2")}}
	buf := make([]byte, 2000)
	for _, a := range addrs {
		for _, o := range optionCombos() {
			for _, payload := range payloads {
				f := TCPFields{SrcPort: 1234, DstPort: 5678, Seq: 0xfffffffe, Ack: 7, Flags: ACK | PSH | ECE,
					Window: 4321, Urgent: 9}
				n, err := BuildPacket(buf, a.src, a.dst, 17, &f, &o, payload)
				name := fmt.Sprintf("%v %+v %d", a.src, o, len(payload))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want := IPv6MinLen
				if a.src.Is4() {
					want = IPv4MinLen
				}
				if want += TCPMinLen + TCPOptionsLen(&o) + len(payload); n != want {
					t.Fatalf("%s: length %d, want %d", name, n, want)
				}
				var p Packet
				if err := ParsePacket(buf[:n], &p); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var got TCPOptions
				if err := p.TCP.Options(&got); err != nil {
					t.Fatalf("%s: options: %v", name, err)
				}
				if p.Src != a.src || p.Dst != a.dst || p.TTL != 17 || p.TCP.SrcPort() != f.SrcPort ||
					p.TCP.DstPort() != f.DstPort || p.TCP.Seq() != f.Seq || p.TCP.Ack() != f.Ack ||
					p.TCP.Flags() != f.Flags || p.TCP.Window() != f.Window || p.TCP.Urgent() != f.Urgent ||
					!bytes.Equal(p.TCP.Payload(), payload) || got != keptSACK(o) {
					t.Fatalf("%s: parsed %+v options %+v", name, p, got)
				}
			}
		}
	}
}

func TestParsePacketErrors(t *testing.T) {
	v4 := mustHex(t, synV4)
	v6 := mustHex(t, synAckV6)
	mod4 := func(f func(b []byte)) []byte {
		b := bytes.Clone(v4)
		f(b)
		fixIPv4Checksum(b)
		return b
	}
	mod6 := func(f func(b []byte)) []byte {
		b := bytes.Clone(v6)
		f(b)
		return b
	}
	// v6ext inserts extension headers between the fixed header and TCP.
	v6ext := func(first byte, exts ...[]byte) []byte {
		b := bytes.Clone(v6[:40])
		b[6] = first
		var n int
		for _, e := range exts {
			b = append(b, e...)
			n += len(e)
		}
		b = append(b, v6[40:]...)
		binary.BigEndian.PutUint16(b[4:6], uint16(n+40))
		return b
	}
	cases := []struct {
		name   string
		b      []byte
		layer  string
		kind   ErrorKind
		offset int
	}{
		{"empty", nil, "ip", KindTruncated, 0},
		{"version 5", mod4(func(b []byte) { b[0] = 0x55 }), "ip", KindBadVersion, 0},
		{"version 0", []byte{0}, "ip", KindBadVersion, 0},
		{"ipv4 bad checksum", func() []byte { b := bytes.Clone(v4); b[10]++; return b }(), "ipv4", KindBadChecksum, 10},
		{"ipv4 udp", mod4(func(b []byte) { b[9] = 17 }), "ipv4", KindNotTCP, 9},
		{"ipv4 MF", mod4(func(b []byte) { b[6] = 0x20 }), "ipv4", KindFragment, 6},
		{"ipv4 offset", mod4(func(b []byte) { b[7] = 0x01 }), "ipv4", KindFragment, 6},
		{"ipv4 udp fragment", mod4(func(b []byte) { b[9] = 17; b[6] = 0x20 }), "ipv4", KindNotTCP, 9},
		{"ipv4 tcp truncated", mod4(func(b []byte) { b[3] = 39 }), "tcp", KindTruncated, 39},
		{"ipv4 data offset 4", mod4(func(b []byte) { b[32] = 0x40 }), "tcp", KindBadDataOffset, 32},
		{"ipv4 data offset past", mod4(func(b []byte) { b[32] = 0xf0 }), "tcp", KindBadDataOffset, 32},
		{"ipv4 tcp checksum", mod4(func(b []byte) { b[36] ^= 0x80 }), "tcp", KindBadChecksum, 36},
		{"ipv4 tcp payload flipped", mod4(func(b []byte) { b[59] ^= 1 }), "tcp", KindBadChecksum, 36},
		{"ipv4 address changed", mod4(func(b []byte) { b[19]++ }), "tcp", KindBadChecksum, 36},
		{"ipv6 version in v6 packet", mod6(func(b []byte) { b[0] = 0x40 }), "ipv4", KindBadHeaderLength, 0},
		{"ipv6 udp", mod6(func(b []byte) { b[6] = 17 }), "ipv6", KindNotTCP, 40},
		{"ipv6 fragment", v6ext(IPv6Fragment, []byte{6, 0, 0, 0, 0, 0, 0, 1}), "ipv6", KindFragment, 40},
		{"ipv6 hbh fragment", v6ext(IPv6HopByHop, ext(IPv6Fragment, 0), []byte{6, 0, 0, 0, 0, 0, 0, 1}),
			"ipv6", KindFragment, 48},
		{"ipv6 ext truncated", mod6(func(b []byte) { b[6] = IPv6Routing; b[41] = 5 }), "ipv6", KindTruncated, 80},
		{"ipv6 tcp checksum", mod6(func(b []byte) { b[57] ^= 1 }), "tcp", KindBadChecksum, 56},
		{"ipv6 hop limit not covered, src is", mod6(func(b []byte) { b[8] ^= 1 }), "tcp", KindBadChecksum, 56},
		{"ipv6 tcp truncated", mod6(func(b []byte) { b[5] = 19 }), "tcp", KindTruncated, 59},
		{"ipv6 data offset past", mod6(func(b []byte) { b[52] = 0xb0 }), "tcp", KindBadDataOffset, 52},
	}
	for _, c := range cases {
		p := Packet{TTL: 99, Src: v4a}
		err := ParsePacket(c.b, &p)
		wantErr(t, c.name, err, c.layer, c.kind, c.offset)
		if p.Src.IsValid() || p.Dst.IsValid() || p.TTL != 0 || p.TCP != nil {
			t.Errorf("%s: *p not zeroed: %+v", c.name, p)
		}
	}
	// The hop limit is not in the pseudo-header: changing it keeps the packet valid.
	var p Packet
	if err := ParsePacket(mod6(func(b []byte) { b[7] = 1 }), &p); err != nil || p.TTL != 1 {
		t.Errorf("hop limit 1: %v %d", err, p.TTL)
	}
	// Extension headers are skipped, and the TCP checksum still holds.
	b := v6ext(IPv6HopByHop, ext(IPv6DestOptions, 0), ext(IPv6Routing, 1), ext(6, 0))
	if err := ParsePacket(b, &p); err != nil || p.TCP.SrcPort() != 443 || len(p.TCP) != 40 {
		t.Errorf("ext chain: %v %x", err, []byte(p.TCP))
	}
}

// Every prefix of a valid packet fails with a typed error, never a panic.
func TestParsePacketEveryPrefix(t *testing.T) {
	for _, s := range []string{synV4, synAckV6} {
		b := mustHex(t, s)
		for n := range len(b) {
			var p Packet
			err := ParsePacket(b[:n], &p)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("len %d: %v", n, err)
			}
			min := IPv4MinLen
			if b[0]>>4 == 6 {
				min = IPv6MinLen
			}
			switch {
			case n == 0:
				wantErr(t, "empty", err, "ip", KindTruncated, 0)
			case n < min:
				wantErr(t, "short", err, e.Layer, KindTruncated, n)
			default:
				wantErr(t, "cut", err, e.Layer, KindBadTotalLength, e.Offset)
			}
		}
		// Padding after the packet is ignored.
		var p Packet
		if err := ParsePacket(append(b, make([]byte, 20)...), &p); err != nil {
			t.Errorf("padded: %v", err)
		}
	}
}

func TestBuildPacketErrors(t *testing.T) {
	f := TCPFields{SrcPort: 1, DstPort: 2, Flags: ACK}
	o := TCPOptions{HasTimestamps: true}
	payload := []byte("abc")
	for _, a := range []struct{ src, dst netip.Addr }{{v4a, v4b}, {v6a, v6b}} {
		full := make([]byte, 100)
		n, err := BuildPacket(full, a.src, a.dst, 64, &f, &o, payload)
		if err != nil {
			t.Fatal(err)
		}
		for short := range n {
			b := make([]byte, short)
			m, err := BuildPacket(b, a.src, a.dst, 64, &f, &o, payload)
			layer := "ipv6"
			if a.src.Is4() {
				layer = "ipv4"
			}
			wantErr(t, "short", err, layer, KindShortBuffer, short)
			if m != 0 || !bytes.Equal(b, make([]byte, short)) {
				t.Errorf("short %d: wrote %d", short, m)
			}
		}
	}
	big := make([]byte, 70000)
	cases := []struct {
		name     string
		src, dst netip.Addr
		payload  []byte
		layer    string
		kind     ErrorKind
	}{
		{"v4 to v6", v4a, v6b, nil, "ipv4", KindBadAddress},
		{"v6 to v4", v6a, v4b, nil, "ipv6", KindBadAddress},
		{"zero src", netip.Addr{}, v6b, nil, "ipv6", KindBadAddress},
		{"zero dst", v6a, netip.Addr{}, nil, "ipv6", KindBadAddress},
		{"v4 too long", v4a, v4b, big[:65535-40+1], "ipv4", KindBadTotalLength},
		{"v6 too long", v6a, v6b, big[:65535-20+1], "ipv6", KindBadTotalLength},
	}
	for _, c := range cases {
		n, err := BuildPacket(make([]byte, 200000), c.src, c.dst, 1, &f, nil, c.payload)
		var e *Error
		if n != 0 || !errors.As(err, &e) || e.Layer != c.layer || e.Kind != c.kind {
			t.Errorf("%s: %d %v", c.name, n, err)
		}
	}
	// The largest packets fit.
	buf := make([]byte, 70000)
	if n, err := BuildPacket(buf, v4a, v4b, 1, &f, nil, big[:65535-40]); n != 65535 || err != nil {
		t.Errorf("v4 max: %d %v", n, err)
	}
	if n, err := BuildPacket(buf, v6a, v6b, 1, &f, nil, big[:65535-20]); n != 65535+40 || err != nil {
		t.Errorf("v6 max: %d %v", n, err)
	}
	var p Packet
	if err := ParsePacket(buf[:65535+40], &p); err != nil || len(p.TCP.Payload()) != 65535-20 {
		t.Errorf("v6 max parse: %v", err)
	}
}

func TestZeroAllocs(t *testing.T) {
	v4 := mustHex(t, synV4)
	v6 := mustHex(t, synAckV6)
	var p Packet
	var o TCPOptions
	for _, b := range [][]byte{v4, v6} {
		if n := testing.AllocsPerRun(100, func() {
			if err := ParsePacket(b, &p); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("ParsePacket: %v allocs", n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if err := p.TCP.Options(&o); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Options: %v allocs", n)
		}
	}
	sack := mustHex(t, "0101080a00000001000000020101051a000000010000000200000003000000040000000500000006")
	if n := testing.AllocsPerRun(100, func() { _ = ParseTCPOptions(sack, &o) }); n != 0 {
		t.Errorf("ParseTCPOptions: %v allocs", n)
	}
	buf := make([]byte, 200)
	f := TCPFields{SrcPort: 1, DstPort: 2, Flags: ACK}
	opts := TCPOptions{HasTimestamps: true, NumSACK: 2}
	for _, a := range []struct{ src, dst netip.Addr }{{v4a, v4b}, {v6a, v6b}} {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := BuildPacket(buf, a.src, a.dst, 64, &f, &opts, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("BuildPacket: %v allocs", n)
		}
	}
}
