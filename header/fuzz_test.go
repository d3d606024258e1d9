package header

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/tcpstate/tcpstate/seqnum"
)

// within reports whether inner lies inside outer's memory (its length, not
// its capacity), the property every view and payload must have.
func within(outer, inner []byte) bool {
	if len(inner) == 0 {
		return true
	}
	o := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	i := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return i >= o && i+uintptr(len(inner)) <= o+uintptr(len(outer))
}

// checkError checks the properties every parse error has: it is an *Error
// from one of the given layers, of a kind parsers report, whose offset lies
// within [lo, hi].
func checkError(t *testing.T, err error, lo, hi int, layers ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *header.Error", err, err)
	}
	if e.Kind < KindTruncated || e.Kind > KindFragment {
		t.Fatalf("%q: parser reported kind %v", err, e.Kind)
	}
	if e.Offset < lo || e.Offset > hi {
		t.Fatalf("%q: offset %d outside [%d, %d]", err, e.Offset, lo, hi)
	}
	for _, l := range layers {
		if e.Layer == l {
			if e.Error() == "" {
				t.Fatal("empty error string")
			}
			return
		}
	}
	t.Fatalf("%q: layer %q, want one of %q", err, e.Layer, layers)
}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{synV4, synAckV6} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(b[:30])
	}
}

// checkTCP checks the properties of a TCP view that ParseTCP accepted.
func checkTCP(t *testing.T, outer []byte, tcp TCP) {
	t.Helper()
	off := tcp.DataOffset()
	if len(tcp) < TCPMinLen || off < TCPMinLen || off > len(tcp) || off > TCPMaxLen {
		t.Fatalf("len %d data offset %d", len(tcp), off)
	}
	if !within(outer, tcp) || !within(tcp, tcp.OptionBytes()) || !within(tcp, tcp.Payload()) {
		t.Fatal("view escapes its buffer")
	}
	if len(tcp.OptionBytes()) != off-TCPMinLen || len(tcp.Payload()) != len(tcp)-off {
		t.Fatalf("options %d payload %d for len %d offset %d", len(tcp.OptionBytes()), len(tcp.Payload()), len(tcp), off)
	}
	var o1, o2 TCPOptions
	err1 := tcp.Options(&o1)
	err2 := ParseTCPOptions(tcp.OptionBytes(), &o2)
	if o1 != o2 || (err1 == nil) != (err2 == nil) {
		t.Fatalf("Options and ParseTCPOptions disagree: %v %v", err1, err2)
	}
	if err1 != nil {
		checkError(t, err1, TCPMinLen, off, "tcp option")
		checkError(t, err2, 0, off-TCPMinLen, "tcp option")
		if !errors.Is(err1, ErrBadOptionLength) {
			t.Fatalf("option error of kind %v", err1)
		}
	}
	checkOptions(t, &o1)
}

// checkOptions checks the invariants of parsed options, and that writing
// them out and parsing them again gives them back, less any SACK blocks
// that the builder's layout cannot fit.
func checkOptions(t *testing.T, o *TCPOptions) {
	t.Helper()
	if o.NumSACK < 0 || o.NumSACK > MaxSACKBlocks {
		t.Fatalf("NumSACK %d", o.NumSACK)
	}
	for i := o.NumSACK; i < MaxSACKBlocks; i++ {
		if o.SACKBlocks[i] != (SACKBlock{}) {
			t.Fatalf("stale SACK block %d: %+v", i, o)
		}
	}
	if (!o.HasMSS && o.MSS != 0) || (!o.HasWindowScale && o.WindowScale != 0) ||
		(!o.HasTimestamps && (o.TSVal != 0 || o.TSEcr != 0)) {
		t.Fatalf("value without its flag: %+v", o)
	}
	var buf [TCPMaxOptionsLen]byte
	n := PutTCPOptions(buf[:], o)
	if n != TCPOptionsLen(o) || n%4 != 0 {
		t.Fatalf("PutTCPOptions wrote %d, TCPOptionsLen %d", n, TCPOptionsLen(o))
	}
	var again TCPOptions
	if err := ParseTCPOptions(buf[:n], &again); err != nil {
		t.Fatalf("reparse of %x: %v", buf[:n], err)
	}
	if want := expectOptions(o); again != want {
		t.Fatalf("reparse: got %+v, want %+v", again, want)
	}
}

// expectOptions returns what parsing the output of PutTCPOptions(o) must
// give: values of absent options are not written, NumSACK is clamped to
// 0..MaxSACKBlocks, and blocks are dropped from the end while the 40-byte
// option space overflows. This is worked out separately from the
// builder's own arithmetic.
func expectOptions(o *TCPOptions) TCPOptions {
	var w TCPOptions
	room := TCPMaxOptionsLen
	if o.HasMSS {
		w.MSS, w.HasMSS = o.MSS, true
		room -= 4
	}
	if o.HasWindowScale {
		w.WindowScale, w.HasWindowScale = o.WindowScale, true
		room -= 4
	}
	if o.HasTimestamps {
		w.TSVal, w.TSEcr, w.HasTimestamps = o.TSVal, o.TSEcr, true
		room -= 12 // SACK-permitted, if any, shares the timestamps' padding
	} else if o.SACKPermitted {
		room -= 4
	}
	w.SACKPermitted = o.SACKPermitted
	n := o.NumSACK
	if n < 0 {
		n = 0
	}
	if n > MaxSACKBlocks {
		n = MaxSACKBlocks
	}
	for n > 0 && 4+8*n > room {
		n--
	}
	w.NumSACK = n
	copy(w.SACKBlocks[:n], o.SACKBlocks[:n])
	return w
}

func FuzzParsePacket(f *testing.F) {
	fuzzSeeds(f)
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParsePacket(t, data)
		// Most random inputs stop at a checksum. Repair both checksums
		// in a copy so that the fuzzer also explores what lies beyond.
		if fixed, ok := fixChecksums(data); ok {
			checkParsePacket(t, fixed)
		}
	})
}

// fixChecksums returns a copy of data with the IPv4 header checksum and the
// TCP checksum recomputed, where the structure allows it.
func fixChecksums(data []byte) ([]byte, bool) {
	b := bytes.Clone(data)
	if len(b) == 0 {
		return nil, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4MinLen {
			return nil, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < IPv4MinLen || ihl > len(b) {
			return nil, false
		}
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:12], refChecksum(b[:ihl]))
		total := min(int(binary.BigEndian.Uint16(b[2:4])), len(b))
		if total-ihl >= TCPMinLen {
			SetTCPChecksum(b[ihl:total], netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])))
		}
	case 6:
		h, err := ParseIPv6(b)
		if err != nil {
			return nil, false
		}
		if _, seg, err := h.TransportProtocol(); err == nil && len(seg) >= TCPMinLen {
			SetTCPChecksum(seg, h.Src(), h.Dst())
		}
	default:
		return nil, false
	}
	return b, !bytes.Equal(b, data)
}

// checkParsePacket checks the properties of ParsePacket on one input.
func checkParsePacket(t *testing.T, data []byte) {
	t.Helper()
	p := Packet{TTL: 1}
	err := ParsePacket(data, &p)
	if err != nil {
		checkError(t, err, 0, len(data), "ip", "ipv4", "ipv6", "tcp")
		if p.TTL != 0 || p.TCP != nil || p.Src.IsValid() || p.Dst.IsValid() {
			t.Fatalf("*p not zeroed on error: %+v", p)
		}
		return
	}
	minIP := IPv4MinLen
	if data[0]>>4 == 6 {
		minIP = IPv6MinLen
	}
	if p.Src.Is4() != (minIP == IPv4MinLen) || p.Dst.Is4() != p.Src.Is4() {
		t.Fatalf("address family %v %v for version %d", p.Src, p.Dst, data[0]>>4)
	}
	if len(p.TCP) > len(data)-minIP || !within(data[minIP:], p.TCP) {
		t.Fatal("segment escapes the packet")
	}
	if !TCPChecksumOK(p.Src, p.Dst, p.TCP) {
		t.Fatal("checksum accepted but does not verify")
	}
	if _, err := ParseTCP(p.TCP); err != nil {
		t.Fatalf("ParsePacket accepted what ParseTCP rejects: %v", err)
	}
	checkTCP(t, data, p.TCP)

	// What was parsed can be built again and parses the same.
	var o TCPOptions
	optsp := &o
	if p.TCP.Options(&o) != nil {
		optsp = nil
	}
	fields := TCPFields{
		SrcPort: p.TCP.SrcPort(), DstPort: p.TCP.DstPort(), Seq: p.TCP.Seq(), Ack: p.TCP.Ack(),
		Flags: p.TCP.Flags(), Window: p.TCP.Window(), Urgent: p.TCP.Urgent(),
	}
	buf := make([]byte, 100+len(data))
	n, err := BuildPacket(buf, p.Src, p.Dst, p.TTL, &fields, optsp, p.TCP.Payload())
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	var q Packet
	if err := ParsePacket(buf[:n], &q); err != nil {
		t.Fatalf("reparse: %v", err)
	}
	checkSameSegment(t, &q, p.Src, p.Dst, p.TTL, &fields, optsp, p.TCP.Payload())
}

// checkSameSegment checks that a parsed packet carries what was built.
func checkSameSegment(t *testing.T, p *Packet, src, dst netip.Addr, ttl uint8, f *TCPFields, o *TCPOptions, payload []byte) {
	t.Helper()
	got := TCPFields{
		SrcPort: p.TCP.SrcPort(), DstPort: p.TCP.DstPort(), Seq: p.TCP.Seq(), Ack: p.TCP.Ack(),
		Flags: p.TCP.Flags(), Window: p.TCP.Window(), Urgent: p.TCP.Urgent(),
	}
	if p.Src != src || p.Dst != dst || p.TTL != ttl || got != *f || !bytes.Equal(p.TCP.Payload(), payload) {
		t.Fatalf("got %v %v %d %+v %x, want %v %v %d %+v %x", p.Src, p.Dst, p.TTL, got, p.TCP.Payload(),
			src, dst, ttl, *f, payload)
	}
	var gotOpts, wantOpts TCPOptions
	if err := p.TCP.Options(&gotOpts); err != nil {
		t.Fatalf("options of a built packet: %v", err)
	}
	if o != nil {
		wantOpts = expectOptions(o)
	}
	if gotOpts != wantOpts {
		t.Fatalf("options: got %+v, want %+v", gotOpts, wantOpts)
	}
}

func FuzzParseTCP(f *testing.F) {
	for _, s := range []string{synV4[40:], synAckV6[80:]} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
		f.Add(b[:19])
	}
	f.Add(tcpHeader(4))
	f.Add(tcpHeader(15))
	f.Add(tcpHeader(6, 2, 1, 0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		tcp, err := ParseTCP(data)
		if err != nil {
			checkError(t, err, 0, len(data), "tcp")
			if tcp != nil {
				t.Fatal("view returned with an error")
			}
			return
		}
		if len(tcp) != len(data) {
			t.Fatalf("view length %d, input %d", len(tcp), len(data))
		}
		checkTCP(t, data, tcp)
	})
}

func FuzzParseTCPOptions(f *testing.F) {
	for _, s := range []string{
		"020405b40402080a000003e80000000001030307",
		"0101080a00000001000000020101051a000000010000000200000003000000040000000500000006",
		"01010522" + "0000000100000002000000030000000400000005000000060000000700000008",
		"1e040909020400640000",
		"0200", "02", "0203000100", "080a0000", "050a00000001",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o := TCPOptions{MSS: 1, HasMSS: true, NumSACK: 4, SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}
		err := ParseTCPOptions(data, &o)
		if err != nil {
			checkError(t, err, 1, len(data), "tcp option")
			if !errors.Is(err, ErrBadOptionLength) {
				t.Fatalf("kind %v", err)
			}
		}
		checkOptions(t, &o)
	})
}

func FuzzParseIPv4(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseIPv4(data)
		if err != nil {
			checkError(t, err, 0, len(data), "ipv4")
			return
		}
		hl, tl := h.HeaderLen(), h.TotalLen()
		if len(h) != tl || tl > len(data) || hl < IPv4MinLen || hl > tl || !within(data, h) ||
			len(h.Payload()) != tl-hl || !within(h, h.Payload()) || len(h.Options()) != hl-IPv4MinLen ||
			!h.ChecksumOK() || h.Version() != 4 {
			t.Fatalf("inconsistent view: hl %d tl %d len %d", hl, tl, len(h))
		}
		// A plain header is what PutIPv4 writes from the same fields,
		// except that the checksum may be either zero of ones'
		// complement arithmetic.
		if hl != IPv4MinLen || h.Flags()&^IPv4DontFragment != 0 || h.FragmentOffset() != 0 {
			return
		}
		var b [IPv4MinLen]byte
		n := PutIPv4(b[:], &IPv4Fields{
			Src: h.Src(), Dst: h.Dst(), Protocol: h.Protocol(), TTL: h.TTL(), TOS: h.TOS(), ID: h.ID(),
			DontFragment: h.Flags()&IPv4DontFragment != 0, PayloadLen: tl - hl,
		})
		if n != IPv4MinLen {
			t.Fatalf("PutIPv4 wrote %d", n)
		}
		c1, c2 := IPv4(b[:]).Checksum(), h.Checksum()
		if !bytes.Equal(b[:10], h[:10]) || !bytes.Equal(b[12:], h[12:20]) ||
			(c1 != c2 && !(c1 == 0 && c2 == 0xffff)) {
			t.Fatalf("rebuilt %x from %x", b, []byte(h[:20]))
		}
	})
}

func FuzzParseIPv6(f *testing.F) {
	fuzzSeeds(f)
	b, _ := hex.DecodeString(synAckV6)
	f.Add([]byte(v6WithExt(IPv6HopByHop, ext(IPv6Routing, 1), ext(IPv6DestOptions, 0), ext(6, 0), b[40:])))
	f.Add([]byte(v6WithExt(IPv6HopByHop, ext(IPv6Fragment, 0), []byte{6, 0, 0, 1, 0, 0, 0, 1}, b[40:])))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseIPv6(data)
		if err != nil {
			checkError(t, err, 0, len(data), "ipv6")
			return
		}
		if len(h) != IPv6MinLen+h.PayloadLen() || len(h) > len(data) || !within(data, h) ||
			len(h.Payload()) != h.PayloadLen() || !within(h, h.Payload()) || h.Version() != 6 {
			t.Fatalf("inconsistent view: payload len %d len %d", h.PayloadLen(), len(h))
		}
		proto, payload, err := h.TransportProtocol()
		if err != nil {
			checkError(t, err, IPv6MinLen, len(h), "ipv6")
			if payload != nil {
				t.Fatal("payload returned with an error")
			}
			return
		}
		if !within(h.Payload(), payload) || (len(payload) > 0 && &payload[len(payload)-1] != &h[len(h)-1]) {
			t.Fatal("transport payload is not a suffix of the IPv6 payload")
		}
		switch proto {
		case IPv6HopByHop, IPv6Routing, IPv6DestOptions, IPv6Fragment:
			t.Fatalf("walk stopped at extension header %d", proto)
		}
	})
}

// optReader hands out the bytes of a fuzzed option description, then zeros.
type optReader []byte

func (r *optReader) byte() byte {
	if len(*r) == 0 {
		return 0
	}
	c := (*r)[0]
	*r = (*r)[1:]
	return c
}

func (r *optReader) u16() uint16 { return uint16(r.byte())<<8 | uint16(r.byte()) }
func (r *optReader) u32() uint32 { return uint32(r.u16())<<16 | uint32(r.u16()) }

// fuzzOptions turns fuzz bytes into a TCPOptions, deliberately including
// values the builder must tolerate: values set without their flag, and
// NumSACK from -8 to 7.
func fuzzOptions(spec []byte) *TCPOptions {
	r := optReader(spec)
	m := r.byte()
	if m == 0xff {
		return nil
	}
	o := &TCPOptions{
		HasMSS: m&1 != 0, HasWindowScale: m&2 != 0, SACKPermitted: m&4 != 0, HasTimestamps: m&8 != 0,
		NumSACK: int(int8(m) >> 4),
	}
	o.MSS, o.WindowScale, o.TSVal, o.TSEcr = r.u16(), r.byte(), r.u32(), r.u32()
	for i := range o.SACKBlocks {
		o.SACKBlocks[i] = SACKBlock{seqnum.Value(r.u32()), seqnum.Value(r.u32())}
	}
	return o
}

func FuzzBuildParse(f *testing.F) {
	f.Add(false, uint16(49152), uint16(80), uint32(0x01020304), uint32(0), byte(SYN), uint16(64240), uint16(0),
		byte(64), []byte{0x0f, 0x05, 0xb4, 7, 0, 0, 3, 0xe8}, []byte(nil), []byte{192, 0, 2, 1, 198, 51, 100, 2})
	f.Add(true, uint16(443), uint16(51000), uint32(0xfffffff0), uint32(1), byte(SYN|ACK), uint16(65535), uint16(0),
		byte(255), []byte{0x0f, 0x05, 0xa0, 9, 1, 2, 3, 4, 5, 6, 7, 8}, []byte("data"), []byte{0x20, 0x01, 0x0d, 0xb8})
	f.Add(false, uint16(1), uint16(2), uint32(3), uint32(4), byte(ACK|PSH), uint16(5), uint16(6),
		byte(1), []byte{0x4f}, bytes.Repeat([]byte{0xaa}, 100), []byte{10, 0, 0, 1, 10, 0, 0, 2})
	f.Add(true, uint16(0), uint16(0), uint32(0), uint32(0), byte(0xff), uint16(0), uint16(0xffff),
		byte(0), []byte{0xff}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, v6 bool, srcPort, dstPort uint16, seq, ack uint32, flags byte,
		window, urgent uint16, ttl byte, optSpec, payload, addrs []byte) {
		var a [32]byte
		copy(a[:], addrs)
		src, dst := netip.AddrFrom4([4]byte(a[0:4])), netip.AddrFrom4([4]byte(a[4:8]))
		if v6 {
			src, dst = netip.AddrFrom16([16]byte(a[0:16])), netip.AddrFrom16([16]byte(a[16:32]))
		}
		fields := TCPFields{SrcPort: srcPort, DstPort: dstPort, Seq: seqnum.Value(seq), Ack: seqnum.Value(ack),
			Flags: TCPFlags(flags), Window: window, Urgent: urgent}
		o := fuzzOptions(optSpec)
		want := IPv4MinLen + TCPMinLen + TCPOptionsLen(o) + len(payload)
		if v6 {
			want += IPv6MinLen - IPv4MinLen
		}
		buf := make([]byte, want+7)
		n, err := BuildPacket(buf, src, dst, ttl, &fields, o, payload)
		if err != nil {
			if !errors.Is(err, ErrBadTotalLength) || len(payload) < 65535-TCPMaxLen-IPv4MinLen {
				t.Fatalf("build: %v", err)
			}
			return
		}
		if n != want {
			t.Fatalf("wrote %d, want %d", n, want)
		}
		if _, err := BuildPacket(buf[:n-1], src, dst, ttl, &fields, o, payload); !errors.Is(err, ErrShortBuffer) {
			t.Fatalf("one byte short: %v", err)
		}
		var p Packet
		if err := ParsePacket(buf[:n], &p); err != nil {
			t.Fatalf("parse: %v", err)
		}
		checkSameSegment(t, &p, src, dst, ttl, &fields, o, payload)
	})
}
