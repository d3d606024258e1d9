package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/tcpstate/tcpstate/header"
)

func TestVirtioNetHdrRoundTrip(t *testing.T) {
	h := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, GSOType: VirtioNetHdrGSOTCPv6, HdrLen: 72, GSOSize: 1428, CsumStart: 40, CsumOffset: 16}
	var b [VirtioNetHdrLen]byte
	if n := h.Encode(b[:]); n != VirtioNetHdrLen {
		t.Fatalf("Encode = %d", n)
	}
	// The kernel's layout: flags, gso_type, then four u16 in host order.
	if b[0] != 1 || b[1] != 4 || binary.NativeEndian.Uint16(b[4:]) != 1428 || binary.NativeEndian.Uint16(b[6:]) != 40 {
		t.Fatalf("encoded % x", b)
	}
	got, err := DecodeVirtioNetHdr(b[:])
	if err != nil || got != h {
		t.Fatalf("Decode = %+v, %v; want %+v", got, err, h)
	}
	if n := h.Encode(b[:9]); n != 0 {
		t.Fatalf("Encode into 9 bytes = %d, want 0", n)
	}
}

func TestDecodeVirtioNetHdrErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", make([]byte, 9), ErrVnetShort},
		{"flags", []byte{0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrVnetFlags},
		{"gso type", []byte{0, 2, 0, 0, 0, 0, 0, 0, 0, 0}, ErrVnetGSOType},
		{"ecn alone", []byte{0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}, ErrVnetGSOType},
		{"no gso size", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, ErrVnetGSOType},
	} {
		if _, err := DecodeVirtioNetHdr(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

var (
	src4 = netip.MustParseAddr("10.1.0.1")
	dst4 = netip.MustParseAddr("10.1.0.2")
	src6 = netip.MustParseAddr("fd00::1")
	dst6 = netip.MustParseAddr("fd00::2")
)

// superPacket builds a TCP packet carrying n bytes of payload, its
// checksum partial (as the kernel hands over a GSO packet).
func superPacket(t testing.TB, src, dst netip.Addr, n int, flags header.TCPFlags) []byte {
	t.Helper()
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	b := make([]byte, 65535)
	f := header.TCPFields{SrcPort: 5000, DstPort: 80, Seq: 0xfffff000, Ack: 77, Flags: flags, Window: 500}
	o := header.TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: 2}
	m, err := header.BuildPacketPartial(b, src, dst, 64, &f, &o, payload)
	if err != nil {
		t.Fatal(err)
	}
	if src.Is4() {
		binary.BigEndian.PutUint16(b[4:6], 100) // an IPv4 ID to count up from
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[10:12], header.FinishChecksum(header.Checksum(b[:20], 0)))
	}
	return b[:m]
}

// TestSegment cuts a GSO packet as the kernel's software GSO does and
// checks every segment: a valid packet (checksums included) with its
// share of the payload, the sequence number advanced, IPv4 IDs counting
// up, CWR on the first segment only, PSH and FIN on the last only.
func TestSegment(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst, gso, csumStart := src4, dst4, uint8(VirtioNetHdrGSOTCPv4), 20
		if v6 {
			src, dst, gso, csumStart = src6, dst6, VirtioNetHdrGSOTCPv6, 40
		}
		const mss, n = 1000, 3500
		pkt := superPacket(t, src, dst, n, header.ACK|header.PSH|header.FIN|header.CWR)
		h := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, GSOType: gso, GSOSize: mss, CsumStart: uint16(csumStart), CsumOffset: 16}
		if err := h.Check(pkt); err != nil {
			t.Fatal(err)
		}
		if got := h.Segments(pkt); got != 4 {
			t.Fatalf("v6 %v: Segments = %d, want 4", v6, got)
		}
		var payload []byte
		for i := 0; i < 4; i++ {
			seg := make([]byte, 2000)
			m := h.Segment(pkt, i, seg)
			var p header.Packet
			if err := header.ParsePacket(seg[:m], &p); err != nil {
				t.Fatalf("v6 %v: segment %d: %v", v6, i, err)
			}
			want := mss
			if i == 3 {
				want = n - 3*mss
			}
			if len(p.TCP.Payload()) != want {
				t.Errorf("segment %d: %d bytes of payload, want %d", i, len(p.TCP.Payload()), want)
			}
			if uint32(p.TCP.Seq()) != 0xfffff000+uint32(i*mss) {
				t.Errorf("segment %d: seq %d", i, p.TCP.Seq())
			}
			fl := p.TCP.Flags()
			if (fl&header.CWR != 0) != (i == 0) || (fl&(header.FIN|header.PSH) == header.FIN|header.PSH) != (i == 3) || fl&header.ACK == 0 {
				t.Errorf("segment %d: flags %v", i, fl)
			}
			if !v6 {
				if id := binary.BigEndian.Uint16(seg[4:6]); id != uint16(100+i) {
					t.Errorf("segment %d: IPv4 ID %d", i, id)
				}
			}
			payload = append(payload, p.TCP.Payload()...)
		}
		if want := pkt[len(pkt)-n:]; !bytes.Equal(payload, want) {
			t.Errorf("v6 %v: the segments' payloads do not make the packet's", v6)
		}
		if m := h.Segment(pkt, 4, make([]byte, 2000)); m != 0 {
			t.Errorf("segment past the end: %d bytes", m)
		}
		if m := h.Segment(pkt, 0, make([]byte, 100)); m != 0 {
			t.Errorf("segment into a short buffer: %d bytes", m)
		}
	}
}

// TestCompleteChecksum: a packet with a partial checksum (NEEDS_CSUM)
// verifies once completed.
func TestCompleteChecksum(t *testing.T) {
	pkt := superPacket(t, src4, dst4, 501, header.ACK)
	var p header.Packet
	if header.ParsePacket(pkt, &p) == nil {
		t.Fatal("a partial checksum verified")
	}
	if header.ParsePacketTrusted(pkt, &p) != nil {
		t.Fatal("ParsePacketTrusted refused a trusted packet")
	}
	h := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: 20, CsumOffset: 16}
	if err := h.Check(pkt); err != nil {
		t.Fatal(err)
	}
	h.CompleteChecksum(pkt)
	if err := header.ParsePacket(pkt, &p); err != nil {
		t.Fatalf("completed checksum: %v", err)
	}
	bad := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, CsumStart: uint16(len(pkt) - 1)}
	if bad.Check(pkt) == nil {
		t.Fatal("Check accepted a checksum field past the packet's end")
	}
}

// TestCheckGSO: a GSO header must name the packet's protocol and family.
func TestCheckGSO(t *testing.T) {
	pkt := superPacket(t, src4, dst4, 3000, header.ACK)
	for _, tc := range []struct {
		gso uint8
		ok  bool
	}{{VirtioNetHdrGSOTCPv4, true}, {VirtioNetHdrGSOTCPv6, false}, {VirtioNetHdrGSOUDPL4, false}, {VirtioNetHdrGSOUDP, false}} {
		h := VirtioNetHdr{GSOType: tc.gso, GSOSize: 1000}
		if err := h.Check(pkt); (err == nil) != tc.ok {
			t.Errorf("GSO type %d on TCPv4: %v", tc.gso, err)
		}
	}
	h := VirtioNetHdr{GSOType: VirtioNetHdrGSOTCPv4, GSOSize: 1000}
	if h.Check(pkt[:len(pkt)-1]) == nil {
		t.Error("Check accepted a packet shorter than its IP length")
	}
}

// TestForPacket: the header for a packet the stack hands over, whole or
// in pieces.
func TestForPacket(t *testing.T) {
	pkt := superPacket(t, src6, dst6, 3000, header.ACK)
	var h VirtioNetHdr
	h.ForPacket(pkt[:200], len(pkt), 1428)
	want := VirtioNetHdr{Flags: VirtioNetHdrFNeedsCsum, GSOType: VirtioNetHdrGSOTCPv6, HdrLen: 40 + 32, GSOSize: 1428, CsumStart: 40, CsumOffset: 16}
	if h != want {
		t.Fatalf("ForPacket = %+v, want %+v", h, want)
	}
	h.ForPacket(pkt, len(pkt), 0)
	if h.IsGSO() || h.Flags != VirtioNetHdrFNeedsCsum {
		t.Fatalf("ForPacket without mss = %+v", h)
	}
	h.ForPacket(pkt[:30], len(pkt), 1428) // headers cut short
	if h != (VirtioNetHdr{}) {
		t.Fatalf("ForPacket of a cut packet = %+v, want the zero header", h)
	}
}

// FuzzVirtioNetHdr feeds a virtio-net header and a packet: decoding,
// checking, completing checksums, segmenting and building a header never
// panic; whatever decodes encodes back to the same bytes, and no segment
// of a packet Check accepts is longer than the headers plus GSOSize.
func FuzzVirtioNetHdr(f *testing.F) {
	var h [VirtioNetHdrLen]byte
	pkt := superPacket(f, src4, dst4, 2500, header.ACK|header.PSH)
	(&VirtioNetHdr{Flags: 1, GSOType: 1, GSOSize: 1000, CsumStart: 20, CsumOffset: 16}).Encode(h[:])
	f.Add(append(h[:], pkt...))
	pkt6 := superPacket(f, src6, dst6, 100, header.ACK)
	(&VirtioNetHdr{Flags: 1, CsumStart: 40, CsumOffset: 16}).Encode(h[:])
	f.Add(append(h[:], pkt6...))
	f.Add([]byte{0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		vh, err := DecodeVirtioNetHdr(b)
		if err != nil {
			return
		}
		var again [VirtioNetHdrLen]byte
		vh.Encode(again[:])
		if !bytes.Equal(again[:], b[:VirtioNetHdrLen]) {
			t.Fatalf("decoded %+v encodes to % x, not % x", vh, again, b[:VirtioNetHdrLen])
		}
		p := append([]byte(nil), b[VirtioNetHdrLen:]...)
		if vh.Check(p) != nil {
			return
		}
		n := vh.Segments(p)
		seg := make([]byte, 65535)
		for i := 0; i < min(n, 64); i++ {
			m := vh.Segment(p, i, seg)
			if vh.IsGSO() && m > 120+int(vh.GSOSize) { // IPv4 and TCP headers: at most 60 bytes each
				t.Fatalf("segment %d of %d bytes for GSO size %d", i, m, vh.GSOSize)
			}
		}
		vh.CompleteChecksum(p)
		var fh VirtioNetHdr
		fh.ForPacket(p, len(p), int(vh.GSOSize))
	})
}
