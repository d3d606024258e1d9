package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6MinLen is the length of the fixed IPv6 header (RFC 8200 §3).
const IPv6MinLen = 40

// IPv6 next-header values that TransportProtocol knows (RFC 8200 §4).
const (
	IPv6HopByHop    = 0
	IPv6Routing     = 43
	IPv6Fragment    = 44
	IPv6NoNextHdr   = 59
	IPv6DestOptions = 60
)

// IPv6 is a view of an IPv6 packet: the fixed header and the payload
// (extension headers included). Use ParseIPv6 to obtain one from received
// bytes. The accessors of a view that has not been through ParseIPv6 (or
// been built by PutIPv6) may panic if it is shorter than IPv6MinLen.
type IPv6 []byte

// ParseIPv6 checks that b begins with an IPv6 packet and returns a view of
// it, cut at the payload length. It checks that b holds at least IPv6MinLen
// bytes (ErrTruncated), that the version is 6 (ErrBadVersion; RFC 8200 §3)
// and that IPv6MinLen plus the payload length does not exceed len(b)
// (ErrBadTotalLength). Bytes after the payload are allowed and left out of
// the view. Jumbograms (RFC 2675) are not supported: a payload length of 0
// means an empty payload. Extension headers are not examined; see
// TransportProtocol.
func ParseIPv6(b []byte) (IPv6, error) {
	const layer = "ipv6"
	if len(b) < IPv6MinLen {
		return nil, truncated(layer, len(b), IPv6MinLen)
	}
	if v := int(b[0] >> 4); v != 6 {
		return nil, newError(layer, KindBadVersion, 0, v)
	}
	pl := int(binary.BigEndian.Uint16(b[4:6]))
	if IPv6MinLen+pl > len(b) {
		return nil, newError(layer, KindBadTotalLength, 4, pl)
	}
	return IPv6(b[:IPv6MinLen+pl]), nil
}

// Version returns the version nibble, 6 for a parsed view.
func (h IPv6) Version() uint8 { return h[0] >> 4 }

// TrafficClass returns the traffic class byte, which holds the DSCP and
// ECN fields (RFC 8200 §7).
func (h IPv6) TrafficClass() uint8 { return h[0]<<4 | h[1]>>4 }

// FlowLabel returns the 20-bit flow label (RFC 8200 §6).
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:4]) & 0xfffff }

// PayloadLen returns the payload length field: the bytes after the fixed
// header, extension headers included.
func (h IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(h[4:6])) }

// NextHeader returns the next header field of the fixed header: the first
// extension header's type, or the transport protocol if there is none.
func (h IPv6) NextHeader() uint8 { return h[6] }

// HopLimit returns the hop limit field.
func (h IPv6) HopLimit() uint8 { return h[7] }

// Src returns the source address.
func (h IPv6) Src() netip.Addr { return netip.AddrFrom16([16]byte(h[8:24])) }

// Dst returns the destination address.
func (h IPv6) Dst() netip.Addr { return netip.AddrFrom16([16]byte(h[24:40])) }

// Payload returns the bytes after the fixed header, up to the payload
// length (bounded by the slice, for a view that did not come from
// ParseIPv6).
func (h IPv6) Payload() []byte {
	end := min(IPv6MinLen+h.PayloadLen(), len(h))
	return h[IPv6MinLen:end]
}

// TransportProtocol walks the extension header chain and returns the
// upper-layer protocol and its bytes. It skips Hop-by-Hop Options,
// Routing and Destination Options headers, whose length is (Hdr Ext Len +
// 1) * 8 bytes (RFC 8200 §4.3, §4.4, §4.6), wherever they appear in the
// chain. It stops with ErrFragment at a Fragment header (RFC 8200 §4.5),
// since this package does not reassemble, and with ErrTruncated (offset
// counted from the start of h) when an extension header runs past the
// payload. Any other next-header value ends the walk and is returned as
// proto, with the rest of the payload: that includes No Next Header (59),
// and AH and ESP, which are not looked into.
func (h IPv6) TransportProtocol() (proto uint8, payload []byte, err error) {
	const layer = "ipv6"
	proto = h.NextHeader()
	payload = h.Payload()
	off := IPv6MinLen // offset of payload within h, for errors
	for {
		switch proto {
		case IPv6HopByHop, IPv6Routing, IPv6DestOptions:
		case IPv6Fragment:
			return proto, nil, newError(layer, KindFragment, off, -1)
		default:
			return proto, payload, nil
		}
		if len(payload) < 8 {
			return proto, nil, truncated(layer, off+len(payload), off+8)
		}
		n := (int(payload[1]) + 1) * 8
		if n > len(payload) {
			return proto, nil, truncated(layer, off+len(payload), off+n)
		}
		proto = payload[0]
		payload = payload[n:]
		off += n
	}
}

// IPv6Fields holds what PutIPv6 writes. PayloadLen is the number of bytes
// that will follow the fixed header, which sets the payload length field.
type IPv6Fields struct {
	Src, Dst     netip.Addr
	NextHeader   uint8
	HopLimit     uint8
	TrafficClass uint8
	FlowLabel    uint32 // only the low 20 bits are used
	PayloadLen   int
}

// PutIPv6 writes the 40-byte fixed IPv6 header at the start of b (RFC 8200
// §3) and returns IPv6MinLen. The payload is not written.
//
// PutIPv6 does not panic but writes nothing and returns 0 when b is shorter
// than IPv6MinLen, when Src or Dst is not an IPv6 address (IPv4-mapped
// IPv6 addresses are accepted) or when PayloadLen is negative or over
// 65535. BuildPacket reports these cases as errors.
func PutIPv6(b []byte, f *IPv6Fields) int {
	if len(b) < IPv6MinLen || !f.Src.Is6() || !f.Dst.Is6() ||
		f.PayloadLen < 0 || f.PayloadLen > 0xffff {
		return 0
	}
	b = b[:IPv6MinLen]
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], uint16(f.PayloadLen))
	b[6] = f.NextHeader
	b[7] = f.HopLimit
	src, dst := f.Src.As16(), f.Dst.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
	return IPv6MinLen
}
