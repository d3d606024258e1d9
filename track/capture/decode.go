package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// LinkType is a capture's link-layer header type, as the tcpdump.org
// LINKTYPE_ registry numbers it (the network field of a pcap file header,
// the LinkType of a pcapng Interface Description Block).
type LinkType uint16

// The link types Decode understands.
const (
	// LinkEthernet is LINKTYPE_ETHERNET: an Ethernet II header, possibly
	// followed by 802.1Q or 802.1ad VLAN tags.
	LinkEthernet LinkType = 1
	// LinkRaw is LINKTYPE_RAW: a bare IPv4 or IPv6 packet, told apart by
	// its version nibble.
	LinkRaw LinkType = 101
	// LinkLinuxSLL is LINKTYPE_LINUX_SLL, Linux "cooked" capture v1: a
	// 16-byte pseudo-header whose last two bytes are the EtherType.
	LinkLinuxSLL LinkType = 113
	// LinkIPv4 is LINKTYPE_IPV4: a bare IPv4 packet.
	LinkIPv4 LinkType = 228
	// LinkIPv6 is LINKTYPE_IPV6: a bare IPv6 packet.
	LinkIPv6 LinkType = 229
	// LinkLinuxSLL2 is LINKTYPE_LINUX_SLL2, Linux "cooked" capture v2: a
	// 20-byte pseudo-header whose first two bytes are the EtherType.
	LinkLinuxSLL2 LinkType = 276
)

// Supported reports whether Decode understands frames of link type l.
func (l LinkType) Supported() bool {
	switch l {
	case LinkEthernet, LinkRaw, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2:
		return true
	}
	return false
}

// Packet is one captured TCP segment, reduced to what the TCP state model
// needs. A Reader reuses one Packet: what Next returns is valid until the
// next call.
type Packet struct {
	// T is the capture timestamp.
	T time.Time
	// Src and Dst are the IP addresses and TCP ports. Addresses from an
	// IPv4 header are plain 4-byte addresses; those from an IPv6 header
	// are 16-byte addresses as written (an IPv4-mapped address in an IPv6
	// header stays mapped, so it is not mistaken for an IPv4 flow).
	Src, Dst netip.AddrPort
	// Flags are the TCP control bits.
	Flags header.TCPFlags
	// Seq and Ack are the sequence and acknowledgment numbers.
	Seq, Ack seqnum.Value
	// Window is the raw window field, not scaled.
	Window uint16
	// PayloadLen is the TCP payload length computed from the IP header's
	// length field (IPv4 total length or IPv6 payload length, less the
	// IP, extension and TCP headers), not from the captured length, so it
	// is right for a headers-only capture. For the first fragment of a
	// fragmented IP packet it counts that fragment's bytes only. When the
	// IP length field is zero (Linux GSO/BIG TCP packets captured on the
	// sending host, RFC 2675 jumbograms) it is computed from Wire.
	PayloadLen int
	// Options holds the TCP options that were captured; options cut off
	// by the snap length, or after a malformed option, are missing (their
	// HasX flags are false).
	Options header.TCPOptions
	// Truncated is set when fewer bytes were captured than the packet
	// had: the capture's snap length cut it, or the IP length field
	// claims more bytes than the frame holds.
	Truncated bool
	// Wire is the packet's original length on the wire, link-layer header
	// included, as the capture record gives it.
	Wire int
}

// ErrNotTCP is what Decode reports for a well-formed frame that does not
// carry a TCP header: ARP, UDP, ICMP, ESP and so on.
var ErrNotTCP = errors.New("capture: not a TCP packet")

// ErrFragment is what Decode reports for an IP fragment other than the
// first: it holds no TCP header (RFC 791 §3.2, RFC 8200 §4.5).
var ErrFragment = errors.New("capture: IP fragment other than the first")

// MalformedError is what Decode reports for a frame it cannot decode;
// Reason says why in a few words, and is the key under which a Reader's
// Stats count such frames.
type MalformedError struct {
	Reason string
	idx    int // index into reasons
}

// Error returns "capture: malformed frame: " and the reason.
func (e *MalformedError) Error() string { return "capture: malformed frame: " + e.Reason }

// The reasons a frame can be malformed. Each error is made once, so that
// reporting one allocates nothing.
var (
	errLinkShort     = &MalformedError{"link-layer header truncated", 0}
	errLinkType      = &MalformedError{"unsupported link type", 1}
	errIPShort       = &MalformedError{"IP header truncated", 2}
	errIPVersion     = &MalformedError{"bad IP version", 3}
	errIPv4HdrLen    = &MalformedError{"bad IPv4 header length", 4}
	errIPLen         = &MalformedError{"IP length shorter than its headers", 5}
	errIPv6ExtShort  = &MalformedError{"IPv6 extension header truncated", 6}
	errTCPShort      = &MalformedError{"TCP header truncated", 7}
	errTCPDataOffset = &MalformedError{"bad TCP data offset", 8}
	errRecord        = &MalformedError{"bad packet record", 9}
	errInterface     = &MalformedError{"packet for an unknown interface", 10}
)

// EtherTypes (IEEE 802 numbers) that the link layers carry.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypeVLAN   = 0x8100 // IEEE 802.1Q customer tag
	etherTypeQinQ   = 0x88a8 // IEEE 802.1ad service tag
	etherTypeQinQv1 = 0x9100 // the pre-standard double-tagging value
)

// IPv6 extension headers and other next-header values (RFC 8200 §4, IANA
// protocol numbers).
const (
	protoHopByHop = 0
	protoTCP      = 6
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDestOpts = 60
)

// Decode decodes frame, one captured frame of link type link whose
// original length was wire bytes, into *p, leaving p.T alone. It succeeds
// for any frame whose IP and TCP headers (without options) were captured;
// it verifies no checksum (captures taken on the sending host hold
// offloaded checksums that the NIC filled in later) and does not need the
// payload. It reports ErrNotTCP, ErrFragment or a *MalformedError and then
// leaves *p in an unspecified state. It never panics and allocates
// nothing.
func Decode(link LinkType, frame []byte, wire int, p *Packet) error {
	var (
		etherType = -1 // -1: the version nibble decides
		off       int
	)
	switch link {
	case LinkEthernet:
		// Ethernet II: destination, source, EtherType (IEEE 802.3 §3.1.1).
		if len(frame) < 14 {
			return errLinkShort
		}
		etherType, off = int(binary.BigEndian.Uint16(frame[12:14])), 14
	case LinkLinuxSLL:
		// Packet type, ARPHRD type, address length, 8 address bytes,
		// protocol (tcpdump.org LINKTYPE_LINUX_SLL).
		if len(frame) < 16 {
			return errLinkShort
		}
		etherType, off = int(binary.BigEndian.Uint16(frame[14:16])), 16
	case LinkLinuxSLL2:
		// Protocol, reserved, interface index, ARPHRD type, packet type,
		// address length, 8 address bytes (tcpdump.org
		// LINKTYPE_LINUX_SLL2).
		if len(frame) < 20 {
			return errLinkShort
		}
		etherType, off = int(binary.BigEndian.Uint16(frame[0:2])), 20
	case LinkRaw:
	case LinkIPv4:
		etherType = etherTypeIPv4
	case LinkIPv6:
		etherType = etherTypeIPv6
	default:
		return errLinkType
	}
	// VLAN tags, one or more, each a 2-byte TCI and the next EtherType
	// (IEEE 802.1Q §9.6; 802.1ad stacks a service tag before it). The
	// Linux cooked headers carry one too when the kernel did not strip it.
	for etherType == etherTypeVLAN || etherType == etherTypeQinQ || etherType == etherTypeQinQv1 {
		if len(frame)-off < 4 {
			return errLinkShort
		}
		etherType = int(binary.BigEndian.Uint16(frame[off+2 : off+4]))
		off += 4
	}
	return decodeIP(etherType, frame[off:], wire-off, wire, p)
}

// decodeIP decodes an IP packet whose link layer named it with etherType
// (-1 when the version nibble decides). ipWire is the IP packet's length
// on the wire (the record's original length less the link-layer header);
// fewer captured bytes than that sets Truncated.
func decodeIP(etherType int, b []byte, ipWire, wire int, p *Packet) error {
	switch etherType {
	case -1:
		if len(b) == 0 {
			return errIPShort
		}
		switch b[0] >> 4 {
		case 4:
			return decodeIPv4(b, ipWire, wire, p)
		case 6:
			return decodeIPv6(b, ipWire, wire, p)
		}
		return errIPVersion
	case etherTypeIPv4:
		return decodeIPv4(b, ipWire, wire, p)
	case etherTypeIPv6:
		return decodeIPv6(b, ipWire, wire, p)
	}
	// ARP, LLDP, MPLS, ... and 802.3 frames, whose "EtherType" is a
	// length below 0x0600 and which carry LLC (IEEE 802.3 §3.2.6): not
	// IP, and not malformed either.
	return ErrNotTCP
}

// decodeIPv4 decodes an IPv4 header (RFC 791 §3.1) and the TCP header
// after it.
func decodeIPv4(b []byte, ipWire, wire int, p *Packet) error {
	if len(b) < header.IPv4MinLen {
		return errIPShort
	}
	if b[0]>>4 != 4 {
		return errIPVersion
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < header.IPv4MinLen {
		return errIPv4HdrLen
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total == 0 {
		// Linux BIG TCP for IPv4 (kernel 6.3, net/ipv4/ip_output.c)
		// hands taps GSO packets over 64 KiB with tot_len 0; Wireshark
		// likewise takes 0 to mean "see the frame" (TSO).
		total = ipWire
	}
	if total < ihl {
		return errIPLen
	}
	// Fragment offset: the low 13 bits of bytes 6-7, in 8-byte units
	// (RFC 791 §3.1). A non-zero offset means the TCP header is in an
	// earlier fragment.
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return ErrFragment
	}
	if b[9] != protoTCP {
		return ErrNotTCP
	}
	if len(b) < ihl {
		return errIPShort
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	return decodeTCP(b[ihl:], total-ihl, src, dst, len(b) < total || len(b) < ipWire, wire, p)
}

// decodeIPv6 decodes an IPv6 header (RFC 8200 §3), walks its extension
// headers (§4) and decodes the TCP header after them.
func decodeIPv6(b []byte, ipWire, wire int, p *Packet) error {
	if len(b) < header.IPv6MinLen {
		return errIPShort
	}
	if b[0]>>4 != 6 {
		return errIPVersion
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen == 0 {
		// A jumbogram (RFC 2675 §2) or a Linux BIG TCP packet captured
		// on the sending host (kernel 5.19, net/ipv6/ip6_output.c): the
		// length is the frame's.
		plen = max(ipWire-header.IPv6MinLen, 0)
	}
	truncated := len(b) < header.IPv6MinLen+plen || len(b) < ipWire
	next := b[6]
	off := header.IPv6MinLen
	for {
		var n int
		switch next {
		case protoTCP:
			if plen < off-header.IPv6MinLen {
				return errIPLen
			}
			src := netip.AddrFrom16([16]byte(b[8:24]))
			dst := netip.AddrFrom16([16]byte(b[24:40]))
			return decodeTCP(b[off:], header.IPv6MinLen+plen-off, src, dst, truncated, wire, p)
		case protoHopByHop, protoRouting, protoDestOpts:
			// Next header, Hdr Ext Len in 8-octet units not counting the
			// first 8 (RFC 8200 §4.3, §4.4, §4.6).
			if len(b)-off < 2 {
				return errIPv6ExtShort
			}
			n = (int(b[off+1]) + 1) * 8
		case protoFragment:
			// Next header, reserved, offset and flags, identification
			// (RFC 8200 §4.5): 8 bytes. Only the first fragment (offset
			// 0) holds the TCP header.
			if len(b)-off < 8 {
				return errIPv6ExtShort
			}
			if binary.BigEndian.Uint16(b[off+2:off+4])>>3 != 0 {
				return ErrFragment
			}
			n = 8
		case protoAH:
			// The Authentication Header's length is in 4-octet units,
			// minus 2 (RFC 4302 §2.2).
			if len(b)-off < 2 {
				return errIPv6ExtShort
			}
			n = (int(b[off+1]) + 2) * 4
		default:
			// ESP, No Next Header, UDP, ICMPv6, ...
			return ErrNotTCP
		}
		if len(b)-off < n {
			return errIPv6ExtShort
		}
		next = b[off]
		off += n
	}
}

// decodeTCP decodes the TCP header at the start of seg (RFC 9293 §3.1),
// of a segment that the IP header says is segLen bytes long.
func decodeTCP(seg []byte, segLen int, src, dst netip.Addr, truncated bool, wire int, p *Packet) error {
	if len(seg) < header.TCPMinLen {
		if segLen < header.TCPMinLen {
			return errIPLen
		}
		return errTCPShort
	}
	doff := int(seg[12]>>4) * 4
	if doff < header.TCPMinLen {
		return errTCPDataOffset
	}
	if doff > segLen {
		return errIPLen
	}
	t := header.TCP(seg)
	p.Src = netip.AddrPortFrom(src, t.SrcPort())
	p.Dst = netip.AddrPortFrom(dst, t.DstPort())
	p.Flags = t.Flags()
	p.Seq = t.Seq()
	p.Ack = t.Ack()
	p.Window = t.Window()
	p.PayloadLen = segLen - doff
	p.Truncated = truncated
	p.Wire = wire
	// Whatever options were captured: a cut-off or malformed option ends
	// the parse, and what came before it stays (ParseTCPOptions leaves it
	// in p.Options on error).
	_ = header.ParseTCPOptions(seg[header.TCPMinLen:min(doff, len(seg))], &p.Options)
	return nil
}
