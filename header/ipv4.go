package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4MinLen is the length of an IPv4 header without options (RFC 791
// §3.1).
const IPv4MinLen = 20

// IPv4MaxTotalLen is the largest value the IPv4 total length field holds.
const IPv4MaxTotalLen = 0xffff

// Bits of the IPv4 flags field, as Flags returns them (RFC 791 §3.1).
const (
	IPv4MoreFragments = 1 << 0
	IPv4DontFragment  = 1 << 1
)

// IPv4 is a view of an IPv4 packet: the header, its options and the
// payload. Use ParseIPv4 to obtain one from received bytes; its accessors
// then read the fields in place. The accessors of a view that has not been
// through ParseIPv4 (or been built by PutIPv4) may panic if it is shorter
// than IPv4MinLen, and Payload and Options clamp to the slice.
type IPv4 []byte

// ParseIPv4 checks that b begins with a well-formed IPv4 packet and returns
// a view of it, cut at the total length. It checks, in this order, that
//
//   - b holds at least IPv4MinLen bytes (ErrTruncated);
//   - the version is 4 (ErrBadVersion; RFC 791 §3.1);
//   - the IHL is at least 5 words (ErrBadHeaderLength; RFC 791 §3.1);
//   - the total length is at least IPv4MinLen and does not exceed len(b)
//     (ErrBadTotalLength; RFC 791 §3.1);
//   - the header, IHL*4 bytes, fits in the total length
//     (ErrBadHeaderLength);
//   - the header checksum verifies (ErrBadChecksum; RFC 791 §3.1,
//     RFC 1071).
//
// Bytes after the total length, such as Ethernet padding, are allowed and
// left out of the view. Options are not interpreted. A fragment and a
// packet of any protocol are accepted; see IsFragment and Protocol.
func ParseIPv4(b []byte) (IPv4, error) {
	return parseIPv4(b)
}

func parseIPv4(b []byte) (IPv4, error) {
	const layer = "ipv4"
	if len(b) < IPv4MinLen {
		return nil, truncated(layer, len(b), IPv4MinLen)
	}
	if v := int(b[0] >> 4); v != 4 {
		return nil, newError(layer, KindBadVersion, 0, v)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4MinLen {
		return nil, newError(layer, KindBadHeaderLength, 0, ihl/4)
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < IPv4MinLen || total > len(b) {
		return nil, newError(layer, KindBadTotalLength, 2, total)
	}
	if ihl > total {
		return nil, newError(layer, KindBadHeaderLength, 0, ihl/4)
	}
	if FinishChecksum(Checksum(b[:ihl], 0)) != 0 {
		return nil, newError(layer, KindBadChecksum, 10, -1)
	}
	return IPv4(b[:total]), nil
}

// Version returns the version nibble, 4 for a parsed view.
func (h IPv4) Version() uint8 { return h[0] >> 4 }

// HeaderLen returns the header length in bytes, options included: the IHL
// field times four (RFC 791 §3.1).
func (h IPv4) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS returns the type-of-service byte, which now holds the DSCP and ECN
// fields (RFC 2474 §3, RFC 3168 §5).
func (h IPv4) TOS() uint8 { return h[1] }

// TotalLen returns the total length field: header plus payload, in bytes.
func (h IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(h[2:4])) }

// ID returns the identification field (RFC 791 §3.1, RFC 6864).
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Flags returns the three flag bits (RFC 791 §3.1): test them against
// IPv4DontFragment and IPv4MoreFragments.
func (h IPv4) Flags() uint8 { return h[6] >> 5 }

// FragmentOffset returns the fragment offset in bytes, that is the field
// times eight (RFC 791 §3.1).
func (h IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(h[6:8])&0x1fff) * 8
}

// IsFragment reports whether the packet is a fragment of a larger one: its
// more-fragments flag is set or its fragment offset is not zero (RFC 791
// §3.2).
func (h IPv4) IsFragment() bool {
	return h.Flags()&IPv4MoreFragments != 0 || h.FragmentOffset() != 0
}

// TTL returns the time-to-live field.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol returns the protocol field; TCP is ProtocolTCP.
func (h IPv4) Protocol() uint8 { return h[9] }

// Checksum returns the header checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:12]) }

// Src returns the source address.
func (h IPv4) Src() netip.Addr { return netip.AddrFrom4([4]byte(h[12:16])) }

// Dst returns the destination address.
func (h IPv4) Dst() netip.Addr { return netip.AddrFrom4([4]byte(h[16:20])) }

// Options returns the header's option bytes, uninterpreted.
func (h IPv4) Options() []byte {
	n := min(h.HeaderLen(), len(h))
	if n < IPv4MinLen {
		return nil
	}
	return h[IPv4MinLen:n]
}

// Payload returns the bytes after the header, up to the total length
// (bounded by the slice, for a view that did not come from ParseIPv4).
func (h IPv4) Payload() []byte {
	end := min(h.TotalLen(), len(h))
	start := h.HeaderLen()
	if start > end {
		return nil
	}
	return h[start:end]
}

// ChecksumOK reports whether the header checksum verifies (RFC 791 §3.1).
// ParseIPv4 has already checked it.
func (h IPv4) ChecksumOK() bool {
	n := h.HeaderLen()
	if n < IPv4MinLen || n > len(h) {
		return false
	}
	return FinishChecksum(Checksum(h[:n], 0)) == 0
}

// IPv4Fields holds what PutIPv4 writes. PayloadLen is the number of bytes
// that will follow the header, which sets the total length field.
type IPv4Fields struct {
	Src, Dst           netip.Addr
	Protocol, TTL, TOS uint8
	ID                 uint16
	DontFragment       bool
	PayloadLen         int
}

// PutIPv4 writes a 20-byte IPv4 header without options at the start of b,
// checksum included (RFC 791 §3.1), and returns IPv4MinLen. The payload is
// not written; put PayloadLen bytes after the header.
//
// PutIPv4 is for building packets, where a mistake is the programmer's:
// it does not panic but writes nothing and returns 0 when b is shorter than
// IPv4MinLen, when Src or Dst is not an IPv4 address, or when PayloadLen is
// negative or too large for the total length field. BuildPacket reports
// these cases as errors.
func PutIPv4(b []byte, f *IPv4Fields) int {
	if len(b) < IPv4MinLen || !f.Src.Is4() || !f.Dst.Is4() ||
		f.PayloadLen < 0 || f.PayloadLen > IPv4MaxTotalLen-IPv4MinLen {
		return 0
	}
	b = b[:IPv4MinLen]
	b[0] = 4<<4 | IPv4MinLen/4
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:4], uint16(IPv4MinLen+f.PayloadLen))
	binary.BigEndian.PutUint16(b[4:6], f.ID)
	var fl uint16
	if f.DontFragment {
		fl = IPv4DontFragment << 13
	}
	binary.BigEndian.PutUint16(b[6:8], fl)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	src, dst := f.Src.As4(), f.Dst.As4()
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[10:12], FinishChecksum(Checksum(b, 0)))
	return IPv4MinLen
}
