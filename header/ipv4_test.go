package header

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// synV4 is an IPv4 SYN from 192.0.2.1:49152 to 198.51.100.2:80 as Linux
// would send it: TTL 64, DF, ID 0, seq 0x01020304, window 64240, options
// MSS 1460, SACK-permitted, timestamps 1000/0, NOP, window scale 7. The
// checksums (IPv4 4e85, TCP 9899) were computed independently of this
// package.
const synV4 = "4500003c0000400040064e85c0000201c6336402" +
	"c00000500102030400000000a002faf098990000" +
	"020405b40402080a000003e80000000001030307"

// fixIPv4Checksum recomputes the header checksum of an IPv4 packet built
// by hand in a test.
func fixIPv4Checksum(b []byte) {
	ihl := int(b[0]&0x0f) * 4
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:12], refChecksum(b[:ihl]))
}

func TestParseIPv4Known(t *testing.T) {
	b := mustHex(t, synV4)
	h, err := ParseIPv4(append(b, 0, 0, 0, 0, 0, 0)) // Ethernet padding
	if err != nil {
		t.Fatal(err)
	}
	if h.Version() != 4 || h.HeaderLen() != 20 || h.TOS() != 0 || h.TotalLen() != 60 || len(h) != 60 ||
		h.ID() != 0 || h.Flags() != IPv4DontFragment || h.FragmentOffset() != 0 || h.IsFragment() ||
		h.TTL() != 64 || h.Protocol() != ProtocolTCP || h.Checksum() != 0x4e85 ||
		h.Src() != netip.MustParseAddr("192.0.2.1") || h.Dst() != netip.MustParseAddr("198.51.100.2") ||
		len(h.Payload()) != 40 || len(h.Options()) != 0 || !h.ChecksumOK() {
		t.Errorf("fields wrong: %x", []byte(h))
	}
}

func TestParseIPv4Errors(t *testing.T) {
	good := mustHex(t, synV4)
	for n := range IPv4MinLen {
		_, err := ParseIPv4(good[:n])
		wantErr(t, "short", err, "ipv4", KindTruncated, n)
	}
	for n := IPv4MinLen; n < len(good); n++ {
		_, err := ParseIPv4(good[:n])
		wantErr(t, "cut", err, "ipv4", KindBadTotalLength, 2)
	}
	mod := func(f func(b []byte), fix bool) []byte {
		b := bytes.Clone(good)
		f(b)
		if fix {
			fixIPv4Checksum(b)
		}
		return b
	}
	cases := []struct {
		name   string
		b      []byte
		kind   ErrorKind
		offset int
	}{
		{"version 6", mod(func(b []byte) { b[0] = 0x65 }, true), KindBadVersion, 0},
		{"version 0", mod(func(b []byte) { b[0] = 0x05 }, true), KindBadVersion, 0},
		{"ihl 4", mod(func(b []byte) { b[0] = 0x44 }, false), KindBadHeaderLength, 0},
		{"ihl 0", mod(func(b []byte) { b[0] = 0x40 }, false), KindBadHeaderLength, 0},
		{"ihl past total", mod(func(b []byte) { b[0] = 0x4f; b[3] = 40 }, false), KindBadHeaderLength, 0},
		{"total past buffer", mod(func(b []byte) { b[3] = 61 }, true), KindBadTotalLength, 2},
		{"total 0xffff", mod(func(b []byte) { b[2], b[3] = 0xff, 0xff }, true), KindBadTotalLength, 2},
		{"total below minimum", mod(func(b []byte) { b[3] = 19 }, true), KindBadTotalLength, 2},
		{"total 0", mod(func(b []byte) { b[3] = 0 }, true), KindBadTotalLength, 2},
		{"total below header", mod(func(b []byte) { b[0] = 0x46; b[3] = 20 }, true), KindBadHeaderLength, 0},
		{"bad checksum", mod(func(b []byte) { b[11] ^= 1 }, false), KindBadChecksum, 10},
		{"bad checksum ttl", mod(func(b []byte) { b[8]-- }, false), KindBadChecksum, 10},
	}
	for _, c := range cases {
		_, err := ParseIPv4(c.b)
		wantErr(t, c.name, err, "ipv4", c.kind, c.offset)
	}
	// An IHL of 6 covers 4 option bytes, which must be in the checksum.
	b := append(mustHex(t, "46000018000000004006000001020304050607080a0b0c0d"), 'x', 'y', 'z')
	fixIPv4Checksum(b)
	h, err := ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.HeaderLen() != 24 || !bytes.Equal(h.Options(), []byte{0x0a, 0x0b, 0x0c, 0x0d}) || len(h.Payload()) != 0 {
		t.Errorf("options %x payload %x", h.Options(), h.Payload())
	}
	b[22] ^= 0xff
	_, err = ParseIPv4(b)
	wantErr(t, "option bytes in checksum", err, "ipv4", KindBadChecksum, 10)
}

func TestIPv4Fragments(t *testing.T) {
	b := mustHex(t, synV4)
	for _, c := range []struct {
		flagsOff uint16
		frag     bool
		off      int
	}{
		{0x4000, false, 0}, {0x0000, false, 0}, {0x2000, true, 0}, {0x0001, true, 8}, {0x3fff, true, 0x1fff * 8},
	} {
		binary.BigEndian.PutUint16(b[6:8], c.flagsOff)
		fixIPv4Checksum(b)
		h, err := ParseIPv4(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.IsFragment() != c.frag || h.FragmentOffset() != c.off {
			t.Errorf("%#04x: IsFragment %v offset %d", c.flagsOff, h.IsFragment(), h.FragmentOffset())
		}
	}
}

func TestIPv4ViewClamps(t *testing.T) {
	// A view that never went through ParseIPv4 with lying length fields.
	h := IPv4(mustHex(t, "4f00ffff0000000040060000c0000201c6336402"))
	if len(h.Options()) != 0 || h.Payload() != nil || h.ChecksumOK() {
		t.Errorf("options %x payload %x", h.Options(), h.Payload())
	}
	h = IPv4(mustHex(t, "4300ffff0000000040060000c0000201c6336402"))
	if h.Options() != nil || len(h.Payload()) != 8 || h.ChecksumOK() {
		t.Errorf("ihl 3: options %x payload %x", h.Options(), h.Payload())
	}
}

func TestPutIPv4(t *testing.T) {
	f := IPv4Fields{
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("198.51.100.2"),
		Protocol: 17, TTL: 3, TOS: 0xb8, ID: 0xbeef, DontFragment: true, PayloadLen: 5,
	}
	buf := make([]byte, 25)
	if n := PutIPv4(buf, &f); n != IPv4MinLen {
		t.Fatalf("wrote %d", n)
	}
	h, err := ParseIPv4(buf)
	if err != nil {
		t.Fatal(err)
	}
	if h.Src() != f.Src || h.Dst() != f.Dst || h.Protocol() != 17 || h.TTL() != 3 || h.TOS() != 0xb8 ||
		h.ID() != 0xbeef || h.Flags() != IPv4DontFragment || h.TotalLen() != 25 || h.IsFragment() {
		t.Errorf("round trip wrong: %x", buf)
	}
	f.DontFragment = false
	PutIPv4(buf, &f)
	if h, err := ParseIPv4(buf); err != nil || h.Flags() != 0 {
		t.Errorf("DF clear: %v %v", err, h)
	}
	bad := []struct {
		name string
		b    []byte
		mod  func(*IPv4Fields)
	}{
		{"short", buf[:19], func(*IPv4Fields) {}},
		{"v6 src", buf, func(f *IPv4Fields) { f.Src = netip.IPv6Loopback() }},
		{"mapped dst", buf, func(f *IPv4Fields) { f.Dst = netip.AddrFrom16(f.Dst.As16()) }},
		{"zero src", buf, func(f *IPv4Fields) { f.Src = netip.Addr{} }},
		{"negative", buf, func(f *IPv4Fields) { f.PayloadLen = -1 }},
		{"too long", buf, func(f *IPv4Fields) { f.PayloadLen = 65516 }},
	}
	for _, c := range bad {
		g := f
		c.mod(&g)
		clear(buf)
		if n := PutIPv4(c.b, &g); n != 0 || !bytes.Equal(buf, make([]byte, 25)) {
			t.Errorf("%s: wrote %d", c.name, n)
		}
	}
	g := f
	g.PayloadLen = 65515
	if n := PutIPv4(buf, &g); n != 20 {
		t.Errorf("max payload: wrote %d", n)
	}
}
