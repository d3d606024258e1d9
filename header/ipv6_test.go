package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// synAckV6 is an IPv6 SYN-ACK from [2001:db8::2]:443 to
// [2001:db8::1]:51000: hop limit 64, seq 0xfffffff0, ack 0x01020305,
// window 65535, options MSS 1440, SACK-permitted, timestamps
// 0x11223344/1000, NOP, window scale 9. Its TCP checksum (d753) was
// computed independently of this package.
const synAckV6 = "6000000000280640" +
	"20010db8000000000000000000000002" +
	"20010db8000000000000000000000001" +
	"01bbc738fffffff001020305a012ffffd7530000" +
	"020405a00402080a11223344000003e801030309"

func TestParseIPv6Known(t *testing.T) {
	b := mustHex(t, synAckV6)
	h, err := ParseIPv6(append(b, 1, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version() != 6 || h.TrafficClass() != 0 || h.FlowLabel() != 0 || h.PayloadLen() != 40 || len(h) != 80 ||
		h.NextHeader() != ProtocolTCP || h.HopLimit() != 64 ||
		h.Src() != netip.MustParseAddr("2001:db8::2") || h.Dst() != netip.MustParseAddr("2001:db8::1") ||
		len(h.Payload()) != 40 {
		t.Errorf("fields wrong: %x", []byte(h))
	}
	proto, payload, err := h.TransportProtocol()
	if err != nil || proto != ProtocolTCP || !bytes.Equal(payload, b[40:]) {
		t.Errorf("TransportProtocol: %d %x %v", proto, payload, err)
	}
}

func TestParseIPv6Errors(t *testing.T) {
	good := mustHex(t, synAckV6)
	for n := range IPv6MinLen {
		_, err := ParseIPv6(good[:n])
		wantErr(t, "short", err, "ipv6", KindTruncated, n)
	}
	for n := IPv6MinLen; n < len(good); n++ {
		_, err := ParseIPv6(good[:n])
		wantErr(t, "cut", err, "ipv6", KindBadTotalLength, 4)
	}
	for _, v := range []byte{0x40, 0x00, 0x70, 0xf0} {
		b := bytes.Clone(good)
		b[0] = v
		_, err := ParseIPv6(b)
		wantErr(t, "version", err, "ipv6", KindBadVersion, 0)
	}
}

// v6WithExt returns an IPv6 packet whose fixed header names first, followed
// by the extension headers given (each already holding its own next header
// and length) and then tail.
func v6WithExt(first byte, parts ...[]byte) IPv6 {
	var payload []byte
	for _, p := range parts {
		payload = append(payload, p...)
	}
	b := make([]byte, IPv6MinLen, IPv6MinLen+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6] = first
	b[7] = 64
	return IPv6(append(b, payload...))
}

// ext returns an extension header of (hdrExtLen+1)*8 bytes.
func ext(next, hdrExtLen byte) []byte {
	b := make([]byte, (int(hdrExtLen)+1)*8)
	b[0], b[1] = next, hdrExtLen
	b[2] = 1 // a PadN option, so the bytes look real
	b[3] = byte(len(b) - 4)
	return b
}

func TestIPv6TransportProtocol(t *testing.T) {
	tcp := tcpHeader(5)
	frag := []byte{ProtocolTCP, 0, 0, 1, 0, 0, 0, 42}
	cases := []struct {
		name    string
		h       IPv6
		proto   uint8
		payload int // offset of the payload within h, -1 on error
		kind    ErrorKind
		offset  int
	}{
		{"bare tcp", v6WithExt(6, tcp), 6, 40, 0, 0},
		{"udp", v6WithExt(17, []byte{1, 2, 3}), 17, 40, 0, 0},
		{"no next header", v6WithExt(IPv6NoNextHdr), IPv6NoNextHdr, 40, 0, 0},
		{"hbh", v6WithExt(IPv6HopByHop, ext(6, 0), tcp), 6, 48, 0, 0},
		{"hbh dst rt dst", v6WithExt(IPv6HopByHop, ext(IPv6DestOptions, 1), ext(IPv6Routing, 0),
			ext(IPv6DestOptions, 2), ext(6, 0), tcp), 6, 40 + 16 + 8 + 24 + 8, 0, 0},
		{"fragment", v6WithExt(IPv6Fragment, frag, tcp), 0, -1, KindFragment, 40},
		{"hbh then fragment", v6WithExt(IPv6HopByHop, ext(IPv6Fragment, 0), frag, tcp), 0, -1, KindFragment, 48},
		{"ext truncated", v6WithExt(IPv6HopByHop, []byte{6, 0, 1, 2}), 0, -1, KindTruncated, 44},
		{"ext empty", v6WithExt(IPv6DestOptions), 0, -1, KindTruncated, 40},
		{"ext length past payload", v6WithExt(IPv6Routing, []byte{6, 1, 0, 0, 0, 0, 0, 0, 0}), 0, -1, KindTruncated, 49},
		{"second ext past payload", v6WithExt(IPv6HopByHop, ext(IPv6DestOptions, 0), []byte{6, 3, 0, 0, 0, 0, 0, 0}),
			0, -1, KindTruncated, 56},
		{"ah not skipped", v6WithExt(51, ext(6, 0)), 51, 40, 0, 0},
	}
	for _, c := range cases {
		h, err := ParseIPv6(c.h)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		proto, payload, err := h.TransportProtocol()
		if c.payload < 0 {
			wantErr(t, c.name, err, "ipv6", c.kind, c.offset)
			if payload != nil {
				t.Errorf("%s: payload %x on error", c.name, payload)
			}
			continue
		}
		if err != nil || proto != c.proto || !bytes.Equal(payload, h[c.payload:]) {
			t.Errorf("%s: got %d %x %v, want %d at %d", c.name, proto, payload, err, c.proto, c.payload)
		}
	}
}

func TestPutIPv6(t *testing.T) {
	f := IPv6Fields{
		Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("::ffff:192.0.2.1"),
		NextHeader: 6, HopLimit: 255, TrafficClass: 0xb9, FlowLabel: 0xfabcde, PayloadLen: 3,
	}
	buf := make([]byte, 43)
	if n := PutIPv6(buf, &f); n != IPv6MinLen {
		t.Fatalf("wrote %d", n)
	}
	h, err := ParseIPv6(buf)
	if err != nil {
		t.Fatal(err)
	}
	if h.Src() != f.Src || h.Dst() != f.Dst || h.NextHeader() != 6 || h.HopLimit() != 255 ||
		h.TrafficClass() != 0xb9 || h.FlowLabel() != 0xabcde || h.PayloadLen() != 3 || len(h.Payload()) != 3 {
		t.Errorf("round trip wrong: %x", buf)
	}
	bad := []struct {
		name string
		b    []byte
		mod  func(*IPv6Fields)
	}{
		{"short", buf[:39], func(*IPv6Fields) {}},
		{"v4 src", buf, func(f *IPv6Fields) { f.Src = netip.MustParseAddr("192.0.2.1") }},
		{"zero dst", buf, func(f *IPv6Fields) { f.Dst = netip.Addr{} }},
		{"negative", buf, func(f *IPv6Fields) { f.PayloadLen = -1 }},
		{"too long", buf, func(f *IPv6Fields) { f.PayloadLen = 65536 }},
	}
	for _, c := range bad {
		g := f
		c.mod(&g)
		clear(buf)
		if n := PutIPv6(c.b, &g); n != 0 || !bytes.Equal(buf, make([]byte, 43)) {
			t.Errorf("%s: wrote %d", c.name, n)
		}
	}
}
