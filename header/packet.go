package header

import (
	"encoding/binary"
	"net/netip"
)

// Packet is a received IP packet that carries a TCP segment, as ParsePacket
// fills it in. TCP is a view into the caller's buffer, not a copy.
type Packet struct {
	// Src and Dst are the IP source and destination addresses.
	Src, Dst netip.Addr
	// TTL is the IPv4 time to live or the IPv6 hop limit.
	TTL uint8
	// TCP is the segment: header, options and payload, checksum verified.
	TCP TCP
}

// ParsePacket parses b, an IPv4 or IPv6 packet chosen by its version
// nibble, into *p. It succeeds only for a TCP segment whose checksum
// verifies; it allocates nothing on success. On failure *p is left zero and
// the error is an *Error whose Offset counts from the start of b:
//
//   - ErrTruncated if b is empty, or ErrBadVersion if the version is
//     neither 4 nor 6, both with layer "ip";
//   - whatever ParseIPv4 or ParseIPv6 reports;
//   - for IPv6, whatever TransportProtocol reports, ErrFragment included;
//   - ErrNotTCP if the protocol is not TCP (Offset is that of the IPv4
//     protocol field, or for IPv6 that of the upper-layer header);
//   - ErrFragment for an IPv4 fragment (RFC 791 §3.2), checked after the
//     protocol;
//   - whatever ParseTCP reports;
//   - ErrBadChecksum with layer "tcp" if the TCP checksum, which covers the
//     pseudo-header, fails (RFC 9293 §3.1).
//
// TCP options are not parsed; call p.TCP.Options.
func ParsePacket(b []byte, p *Packet) error { return parsePacket(b, p, true) }

// ParsePacketTrusted is ParsePacket without the TCP checksum check, for a
// packet whose link vouches for it: a TUN device's kernel says it
// verified the checksum or that the packet comes from its own stack with
// the checksum left for the device to finish (virtio-net DATA_VALID or
// NEEDS_CSUM, as link.Offloader reports), when the field holds only the
// pseudo-header sum. The IPv4 header checksum is still checked.
func ParsePacketTrusted(b []byte, p *Packet) error { return parsePacket(b, p, false) }

func parsePacket(b []byte, p *Packet, verify bool) error {
	*p = Packet{}
	if len(b) == 0 {
		return truncated("ip", 0, 1)
	}
	var (
		src, dst netip.Addr
		ttl      uint8
		seg      []byte
		base     int
	)
	switch b[0] >> 4 {
	case 4:
		h, err := parseIPv4(b)
		if err != nil {
			return err
		}
		if h.Protocol() != ProtocolTCP {
			return newError("ipv4", KindNotTCP, 9, int(h.Protocol()))
		}
		if h.IsFragment() {
			return newError("ipv4", KindFragment, 6, -1)
		}
		src, dst, ttl = h.Src(), h.Dst(), h.TTL()
		base = h.HeaderLen()
		seg = h[base:]
	case 6:
		h, err := ParseIPv6(b)
		if err != nil {
			return err
		}
		proto, payload, err := h.TransportProtocol()
		if err != nil {
			return err
		}
		if proto != ProtocolTCP {
			return newError("ipv6", KindNotTCP, len(h)-len(payload), int(proto))
		}
		src, dst, ttl = h.Src(), h.Dst(), h.HopLimit()
		base = len(h) - len(payload)
		seg = payload
	default:
		return newError("ip", KindBadVersion, 0, int(b[0]>>4))
	}
	t, err := parseTCP(seg, base)
	if err != nil {
		return err
	}
	if verify && !TCPChecksumOK(src, dst, t) {
		return newError("tcp", KindBadChecksum, base+16, -1)
	}
	*p = Packet{Src: src, Dst: dst, TTL: ttl, TCP: t}
	return nil
}

// BuildPacket writes an IP packet carrying a TCP segment at the start of b
// and returns its length. The IP version follows src: IPv4 (a 20-byte
// header with Don't Fragment set and ID 0, RFC 6864 §4.1) if src.Is4(),
// else IPv6 (a 40-byte header with no extension headers). The TCP segment
// is built by PutTCP from f, o and payload, and both the IPv4 header
// checksum and the TCP checksum are set.
//
// It returns an *Error and writes nothing if b is too small
// (ErrShortBuffer), if dst is not of the same family as src or either is
// invalid (ErrBadAddress), or if the packet would be too long for the IP
// length field (ErrBadTotalLength).
func BuildPacket(b []byte, src, dst netip.Addr, ttl uint8, f *TCPFields, o *TCPOptions, payload []byte) (int, error) {
	return buildPacket(b, src, dst, ttl, f, o, payload, false)
}

// BuildPacketPartial is BuildPacket leaving the TCP checksum for the link
// to finish: the checksum field holds the pseudo-header sum over the
// segment's length, folded and not complemented, as the kernel's
// CHECKSUM_PARTIAL and the virtio-net NEEDS_CSUM flag want it
// (include/linux/skbuff.h), and the payload is not summed. Hand the
// packet only to a link that completes checksums (link.Offloader).
func BuildPacketPartial(b []byte, src, dst netip.Addr, ttl uint8, f *TCPFields, o *TCPOptions, payload []byte) (int, error) {
	return buildPacket(b, src, dst, ttl, f, o, payload, true)
}

// setTCPChecksum sets seg's checksum, in full or (partial) only the
// pseudo-header sum.
func setTCPChecksum(seg []byte, src, dst netip.Addr, partial bool) {
	if !partial {
		SetTCPChecksum(seg, src, dst)
		return
	}
	binary.BigEndian.PutUint16(seg[16:18], uint16(PseudoHeaderSum(src, dst, ProtocolTCP, len(seg))))
}

func buildPacket(b []byte, src, dst netip.Addr, ttl uint8, f *TCPFields, o *TCPOptions, payload []byte, partial bool) (int, error) {
	segLen := TCPMinLen + TCPOptionsLen(o) + len(payload)
	if src.Is4() {
		const layer = "ipv4"
		if !dst.Is4() {
			return 0, newError(layer, KindBadAddress, 16, -1)
		}
		if segLen > IPv4MaxTotalLen-IPv4MinLen {
			return 0, newError(layer, KindBadTotalLength, 2, IPv4MinLen+segLen)
		}
		n := IPv4MinLen + segLen
		if len(b) < n {
			return 0, &Error{Layer: layer, Kind: KindShortBuffer, Offset: len(b), Value: n}
		}
		PutIPv4(b, &IPv4Fields{
			Src: src, Dst: dst, Protocol: ProtocolTCP, TTL: ttl,
			DontFragment: true, PayloadLen: segLen,
		})
		seg := b[IPv4MinLen:n]
		PutTCP(seg, f, o, payload)
		setTCPChecksum(seg, src, dst, partial)
		return n, nil
	}
	const layer = "ipv6"
	if !src.Is6() {
		return 0, newError(layer, KindBadAddress, 8, -1)
	}
	if !dst.Is6() {
		return 0, newError(layer, KindBadAddress, 24, -1)
	}
	if segLen > 0xffff {
		return 0, newError(layer, KindBadTotalLength, 4, segLen)
	}
	n := IPv6MinLen + segLen
	if len(b) < n {
		return 0, &Error{Layer: layer, Kind: KindShortBuffer, Offset: len(b), Value: n}
	}
	PutIPv6(b, &IPv6Fields{
		Src: src, Dst: dst, NextHeader: ProtocolTCP, HopLimit: ttl, PayloadLen: segLen,
	})
	seg := b[IPv6MinLen:n]
	PutTCP(seg, f, o, payload)
	setTCPChecksum(seg, src, dst, partial)
	return n, nil
}
