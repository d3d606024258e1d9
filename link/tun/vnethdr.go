package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tcpstate/tcpstate/header"
)

// The virtio-net header a TUN device opened with IFF_VNET_HDR puts before
// every packet it hands over and expects before every packet written to
// it: struct virtio_net_hdr of the Virtio specification (v1.2 §5.1.6,
// include/uapi/linux/virtio_net.h). Its fields are in the host's byte
// order, as the kernel's tun driver uses for a legacy header unless
// TUNSETVNETLE or TUNSETVNETBE says otherwise
// (drivers/net/tun_vnet.h, tun_vnet16_to_cpu).

// VirtioNetHdrLen is the length of struct virtio_net_hdr, the header this
// package asks for with TUNSETVNETHDRSZ.
const VirtioNetHdrLen = 10

// Flags of virtio_net_hdr (include/uapi/linux/virtio_net.h).
const (
	// VirtioNetHdrFNeedsCsum: the checksum from CsumStart to the end of
	// the packet is not computed yet; the field at CsumStart+CsumOffset
	// holds the pseudo-header sum, and whoever passes the packet on
	// completes it (CHECKSUM_PARTIAL in the kernel).
	VirtioNetHdrFNeedsCsum = 1
	// VirtioNetHdrFDataValid: the kernel has verified the packet's
	// checksums (CHECKSUM_UNNECESSARY).
	VirtioNetHdrFDataValid = 2
	// VirtioNetHdrFRSCInfo: coalescing information is in the csum
	// fields; only a virtio device sets it, never tun.
	VirtioNetHdrFRSCInfo = 4
)

// GSO types of virtio_net_hdr: what kind of segmentation a packet longer
// than its MTU needs (include/uapi/linux/virtio_net.h).
const (
	VirtioNetHdrGSONone  = 0
	VirtioNetHdrGSOTCPv4 = 1
	VirtioNetHdrGSOUDP   = 3 // UFO, IP fragmentation; never produced nowadays
	VirtioNetHdrGSOTCPv6 = 4
	VirtioNetHdrGSOUDPL4 = 5 // USO: UDP segmentation (Linux 6.2)
	VirtioNetHdrGSOECN   = 0x80
)

// Offload flags for TUNSETOFFLOAD (include/uapi/linux/if_tun.h): which
// kinds of packet this end accepts from the kernel.
const (
	tunFCsum = 0x01
	tunFTSO4 = 0x02
	tunFTSO6 = 0x04
	tunFUSO4 = 0x20
	tunFUSO6 = 0x40
)

// VirtioNetHdr is struct virtio_net_hdr, decoded.
type VirtioNetHdr struct {
	// Flags holds VirtioNetHdrFNeedsCsum, VirtioNetHdrFDataValid.
	Flags uint8
	// GSOType is one of the VirtioNetHdrGSO constants, possibly with
	// VirtioNetHdrGSOECN.
	GSOType uint8
	// HdrLen is the length of the headers (IP and transport) that each
	// segment repeats, a hint the kernel does not rely on.
	HdrLen uint16
	// GSOSize is the payload length of each segment but the last.
	GSOSize uint16
	// CsumStart is where checksumming starts, counted from the start of
	// the IP packet (a TUN device has no link-layer header).
	CsumStart uint16
	// CsumOffset is where, from CsumStart, the checksum goes.
	CsumOffset uint16
}

// Errors of DecodeVirtioNetHdr and VirtioNetHdr.Check.
var (
	ErrVnetShort   = errors.New("tun: virtio-net header: too short")
	ErrVnetFlags   = errors.New("tun: virtio-net header: unknown flags")
	ErrVnetGSOType = errors.New("tun: virtio-net header: unknown GSO type")
	ErrVnetPacket  = errors.New("tun: virtio-net header does not fit its packet")
)

// DecodeVirtioNetHdr reads a virtio-net header from the first
// VirtioNetHdrLen bytes of b. It checks the header alone: known flags and
// GSO type, and a GSOSize for a GSO packet. It never panics.
func DecodeVirtioNetHdr(b []byte) (VirtioNetHdr, error) {
	if len(b) < VirtioNetHdrLen {
		return VirtioNetHdr{}, fmt.Errorf("%w: %d bytes, want %d", ErrVnetShort, len(b), VirtioNetHdrLen)
	}
	e := binary.NativeEndian
	h := VirtioNetHdr{
		Flags: b[0], GSOType: b[1],
		HdrLen: e.Uint16(b[2:4]), GSOSize: e.Uint16(b[4:6]),
		CsumStart: e.Uint16(b[6:8]), CsumOffset: e.Uint16(b[8:10]),
	}
	if h.Flags&^(VirtioNetHdrFNeedsCsum|VirtioNetHdrFDataValid|VirtioNetHdrFRSCInfo) != 0 {
		return h, fmt.Errorf("%w: %#x", ErrVnetFlags, h.Flags)
	}
	switch h.GSOType &^ VirtioNetHdrGSOECN {
	case VirtioNetHdrGSONone:
		if h.GSOType&VirtioNetHdrGSOECN != 0 {
			return h, fmt.Errorf("%w: ECN without a GSO type", ErrVnetGSOType)
		}
	case VirtioNetHdrGSOTCPv4, VirtioNetHdrGSOTCPv6, VirtioNetHdrGSOUDPL4, VirtioNetHdrGSOUDP:
		if h.GSOSize == 0 {
			return h, fmt.Errorf("%w: GSO type %d with a segment size of 0", ErrVnetGSOType, h.GSOType)
		}
	default:
		return h, fmt.Errorf("%w: %d", ErrVnetGSOType, h.GSOType)
	}
	return h, nil
}

// Encode writes h into the first VirtioNetHdrLen bytes of b, which must
// be that long, and returns VirtioNetHdrLen (0, writing nothing, if b is
// too short).
func (h *VirtioNetHdr) Encode(b []byte) int {
	if len(b) < VirtioNetHdrLen {
		return 0
	}
	e := binary.NativeEndian
	b[0], b[1] = h.Flags, h.GSOType
	e.PutUint16(b[2:4], h.HdrLen)
	e.PutUint16(b[4:6], h.GSOSize)
	e.PutUint16(b[6:8], h.CsumStart)
	e.PutUint16(b[8:10], h.CsumOffset)
	return VirtioNetHdrLen
}

// IsGSO reports whether the packet is longer than one segment and must be
// cut into segments of GSOSize.
func (h *VirtioNetHdr) IsGSO() bool { return h.GSOType&^VirtioNetHdrGSOECN != VirtioNetHdrGSONone }

// Trusted reports whether the kernel vouches for the packet's transport
// checksum: it verified it (DATA_VALID), or the packet comes from the
// kernel's own stack with the checksum left to finish (NEEDS_CSUM), so
// nothing on the way could have damaged it.
func (h *VirtioNetHdr) Trusted() bool {
	return h.Flags&(VirtioNetHdrFNeedsCsum|VirtioNetHdrFDataValid) != 0
}

// l4 describes where a packet's transport header is.
type l4 struct {
	ipLen   int   // IP header length (with IPv6 extension headers: none allowed)
	proto   uint8 // transport protocol
	hdrLen  int   // IP and transport headers
	v6      bool
	src     netip.Addr
	dst     netip.Addr
	payload int // transport payload length
}

// parseL4 finds the IP and TCP or UDP headers of pkt, an IP packet from
// or for a TUN device, without trusting anything in the virtio header.
// pkt may be the start of a packet total bytes long, as long as it holds
// the headers.
func parseL4(pkt []byte, total int) (l4, error) {
	var p l4
	if len(pkt) < header.IPv4MinLen {
		return p, fmt.Errorf("%w: %d-byte packet", ErrVnetPacket, len(pkt))
	}
	switch pkt[0] >> 4 {
	case 4:
		p.ipLen = int(pkt[0]&0x0f) * 4
		if p.ipLen < header.IPv4MinLen || p.ipLen > len(pkt) {
			return p, fmt.Errorf("%w: IPv4 header length %d", ErrVnetPacket, p.ipLen)
		}
		if tot := int(binary.BigEndian.Uint16(pkt[2:4])); tot != total {
			return p, fmt.Errorf("%w: IPv4 total length %d in a %d-byte packet", ErrVnetPacket, tot, total)
		}
		p.proto = pkt[9]
		p.src = netip.AddrFrom4([4]byte(pkt[12:16]))
		p.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	case 6:
		if len(pkt) < header.IPv6MinLen {
			return p, fmt.Errorf("%w: %d-byte IPv6 packet", ErrVnetPacket, len(pkt))
		}
		if pl := int(binary.BigEndian.Uint16(pkt[4:6])); pl != total-header.IPv6MinLen {
			return p, fmt.Errorf("%w: IPv6 payload length %d in a %d-byte packet", ErrVnetPacket, pl, total)
		}
		p.v6 = true
		p.ipLen = header.IPv6MinLen
		p.proto = pkt[6]
		p.src = netip.AddrFrom16([16]byte(pkt[8:24]))
		p.dst = netip.AddrFrom16([16]byte(pkt[24:40]))
	default:
		return p, fmt.Errorf("%w: IP version %d", ErrVnetPacket, pkt[0]>>4)
	}
	switch p.proto {
	case header.ProtocolTCP:
		if len(pkt) < p.ipLen+header.TCPMinLen {
			return p, fmt.Errorf("%w: truncated TCP header", ErrVnetPacket)
		}
		off := int(pkt[p.ipLen+12]>>4) * 4
		if off < header.TCPMinLen || p.ipLen+off > len(pkt) {
			return p, fmt.Errorf("%w: TCP data offset %d", ErrVnetPacket, off)
		}
		p.hdrLen = p.ipLen + off
	case protocolUDP:
		if len(pkt) < p.ipLen+8 {
			return p, fmt.Errorf("%w: truncated UDP header", ErrVnetPacket)
		}
		p.hdrLen = p.ipLen + 8
	default:
		p.hdrLen = p.ipLen
	}
	p.payload = total - p.hdrLen
	return p, nil
}

const protocolUDP = 17

// Check verifies that h fits pkt, the IP packet it came with: a checksum
// to complete lies inside the packet, and a GSO packet is a TCP or UDP
// packet of the family its type names (an IPv6 one without extension
// headers), with more than GSOSize bytes of payload.
func (h *VirtioNetHdr) Check(pkt []byte) error {
	if h.Flags&VirtioNetHdrFNeedsCsum != 0 {
		if int(h.CsumStart)+int(h.CsumOffset)+2 > len(pkt) {
			return fmt.Errorf("%w: checksum at %d+%d in a %d-byte packet", ErrVnetPacket, h.CsumStart, h.CsumOffset, len(pkt))
		}
	}
	if !h.IsGSO() {
		return nil
	}
	p, err := parseL4(pkt, len(pkt))
	if err != nil {
		return err
	}
	want := uint8(header.ProtocolTCP)
	switch h.GSOType &^ VirtioNetHdrGSOECN {
	case VirtioNetHdrGSOTCPv4:
		if p.v6 {
			return fmt.Errorf("%w: GSO TCPv4 on an IPv6 packet", ErrVnetPacket)
		}
	case VirtioNetHdrGSOTCPv6:
		if !p.v6 {
			return fmt.Errorf("%w: GSO TCPv6 on an IPv4 packet", ErrVnetPacket)
		}
	case VirtioNetHdrGSOUDPL4:
		want = protocolUDP
	default:
		return fmt.Errorf("%w: GSO type %d is not supported", ErrVnetGSOType, h.GSOType)
	}
	if p.proto != want {
		return fmt.Errorf("%w: GSO type %d on protocol %d", ErrVnetPacket, h.GSOType, p.proto)
	}
	return nil
}

// Segments returns how many packets pkt makes once cut into segments of
// h.GSOSize: 1 for a packet that needs no segmentation.
func (h *VirtioNetHdr) Segments(pkt []byte) int {
	if !h.IsGSO() || h.GSOSize == 0 {
		return 1
	}
	p, err := parseL4(pkt, len(pkt))
	if err != nil || p.payload == 0 {
		return 1
	}
	return (p.payload + int(h.GSOSize) - 1) / int(h.GSOSize)
}

// CompleteChecksum finishes a checksum the header says is partial
// (NEEDS_CSUM): the ones' complement sum from CsumStart to the end of
// pkt, seeded with the pseudo-header sum already in the field, goes in
// the field at CsumStart+CsumOffset — what the kernel's
// skb_checksum_help does. Call Check first.
func (h *VirtioNetHdr) CompleteChecksum(pkt []byte) {
	if h.Flags&VirtioNetHdrFNeedsCsum == 0 {
		return
	}
	start, at := int(h.CsumStart), int(h.CsumStart)+int(h.CsumOffset)
	if at+2 > len(pkt) {
		return
	}
	binary.BigEndian.PutUint16(pkt[at:], header.FinishChecksum(header.Checksum(pkt[start:], 0)))
}

// Segment writes segment i (from 0) of pkt, a GSO packet h describes and
// h.Check accepted, into dst as a complete IP packet with every checksum
// set, and returns its length, or 0 if dst is too short or i is past
// the last segment. It does what the kernel's software GSO does
// (net/ipv4/tcp_offload.c tcp_gso_segment, net/ipv4/udp_offload.c
// __udp_gso_segment, net/ipv4/af_inet.c inet_gso_segment): each segment
// repeats the headers with its own length; an IPv4 ID counts up from the
// first; a TCP sequence number advances by the payload before it, CWR
// stays on the first segment only and FIN and PSH on the last only.
func (h *VirtioNetHdr) Segment(pkt []byte, i int, dst []byte) int {
	p, err := parseL4(pkt, len(pkt))
	if err != nil || h.GSOSize == 0 || i < 0 {
		return 0
	}
	mss := int(h.GSOSize)
	from := i * mss
	if from >= p.payload && !(i == 0 && p.payload == 0) {
		return 0
	}
	to := min(from+mss, p.payload)
	n := p.hdrLen + to - from
	if len(dst) < n {
		return 0
	}
	copy(dst, pkt[:p.hdrLen])
	copy(dst[p.hdrLen:], pkt[p.hdrLen+from:p.hdrLen+to])
	last := to == p.payload
	be := binary.BigEndian
	if p.v6 {
		be.PutUint16(dst[4:6], uint16(n-header.IPv6MinLen))
	} else {
		be.PutUint16(dst[2:4], uint16(n))
		be.PutUint16(dst[4:6], be.Uint16(pkt[4:6])+uint16(i))
		dst[10], dst[11] = 0, 0
		be.PutUint16(dst[10:12], header.FinishChecksum(header.Checksum(dst[:p.ipLen], 0)))
	}
	t := dst[p.ipLen:n]
	var sumAt int
	switch p.proto {
	case header.ProtocolTCP:
		be.PutUint32(t[4:8], be.Uint32(pkt[p.ipLen+4:])+uint32(from))
		if !last {
			t[13] &^= uint8(header.FIN | header.PSH)
		}
		if i > 0 {
			t[13] &^= uint8(header.CWR)
		}
		sumAt = 16
	case protocolUDP:
		be.PutUint16(t[4:6], uint16(len(t)))
		sumAt = 6
	default:
		return n
	}
	t[sumAt], t[sumAt+1] = 0, 0
	sum := header.FinishChecksum(header.Checksum(t, header.PseudoHeaderSum(p.src, p.dst, p.proto, len(t))))
	if sum == 0 && p.proto == protocolUDP {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	be.PutUint16(t[sumAt:], sum)
	return n
}

// ForPacket fills in h for a packet of total bytes that starts with head
// (which holds at least its IP and TCP headers), an IP packet carrying
// TCP whose checksum field holds the pseudo-header sum over its whole TCP
// length: NEEDS_CSUM
// at the TCP checksum, and, when mss is positive and the payload longer
// than mss, GSO TCPv4 or TCPv6 with segments of mss. Any other packet
// (not TCP, or whose headers do not parse) gets the zero header: sent as
// it is, checksums included.
func (h *VirtioNetHdr) ForPacket(head []byte, total, mss int) {
	*h = VirtioNetHdr{}
	p, err := parseL4(head, total)
	if err != nil || p.proto != header.ProtocolTCP {
		return
	}
	h.Flags = VirtioNetHdrFNeedsCsum
	h.CsumStart = uint16(p.ipLen)
	h.CsumOffset = 16
	h.HdrLen = uint16(p.hdrLen)
	if mss > 0 && p.payload > mss {
		h.GSOType = VirtioNetHdrGSOTCPv4
		if p.v6 {
			h.GSOType = VirtioNetHdrGSOTCPv6
		}
		h.GSOSize = uint16(min(mss, 0xffff))
	}
}
