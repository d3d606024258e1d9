package header

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// ProtocolTCP is TCP's IP protocol number, used in the IPv4 protocol field,
// the IPv6 next header field and the checksum pseudo-header (RFC 9293 §3.1).
const ProtocolTCP = 6

// Checksum adds the bytes of b to the running Internet checksum sum
// initial and returns the new running sum (RFC 1071 §1, §4.1). The bytes are
// taken as big-endian 16-bit words; an odd final byte is padded on the right
// with a zero byte (RFC 1071 §4.1, RFC 9293 §3.1).
//
// The result is the ones' complement sum folded to 16 bits but not yet
// complemented, kept in a uint32 so that it can be passed back as initial.
// Any uint32 is a valid initial value (use 0 to start), so sums can be
// chained: Checksum(b2, Checksum(b1, 0)) equals Checksum(append(b1, b2...),
// 0) as long as b1 has even length. Chaining after an odd-length piece is
// wrong, since it shifts every following byte to the other half of its
// word. Pass the final running sum to FinishChecksum to get the value that
// goes in a header.
//
// The sum is computed eight bytes at a time into a 64-bit accumulator with
// end-around carry (RFC 1071 §2(C) and (D)), which gives the same ones'
// complement sum as adding 16-bit words one by one. The words are loaded
// little-endian, which is cheaper on common hardware, and the folded
// result is byte-swapped once at the end: the ones' complement sum of
// byte-swapped words is the byte-swapped sum (RFC 1071 §2(B)).
func Checksum(b []byte, initial uint32) uint32 {
	var acc, carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), carry)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	// acc+carry cannot overflow: after a carry out, acc is at most 2^64-2.
	sum := uint64(bits.ReverseBytes16(fold64(acc+carry))) + uint64(initial)

	// Fewer than eight bytes are left. Add them as big-endian words; an
	// odd last byte is the high half of its word.
	switch len(b) {
	case 7:
		sum += uint64(b[6]) << 8
		fallthrough
	case 6:
		sum += uint64(binary.BigEndian.Uint16(b[4:6]))
		fallthrough
	case 4:
		sum += uint64(binary.BigEndian.Uint32(b[0:4]))
	case 5:
		sum += uint64(binary.BigEndian.Uint32(b[0:4])) + uint64(b[4])<<8
	case 3:
		sum += uint64(b[2]) << 8
		fallthrough
	case 2:
		sum += uint64(binary.BigEndian.Uint16(b[0:2]))
	case 1:
		sum += uint64(b[0]) << 8
	}
	return uint32(fold64(sum))
}

// fold64 reduces a 64-bit ones' complement sum to 16 bits (RFC 1071 §2(C)).
func fold64(acc uint64) uint16 {
	s := (acc >> 32) + (acc & 0xffffffff) // < 2^33
	s = (s >> 32) + (s & 0xffffffff)      // < 2^32
	s = (s >> 16) + (s & 0xffff)          // < 2^17
	s = (s >> 16) + (s & 0xffff)          // < 2^16 + 1, and no carry out of 16 bits remains
	return uint16(s)
}

// FinishChecksum folds a running sum from Checksum or PseudoHeaderSum to 16
// bits and complements it, giving the value to store in a checksum field
// (RFC 1071 §1). Run over data that already holds a correct checksum, the
// result is 0.
func FinishChecksum(sum uint32) uint16 {
	return ^fold64(uint64(sum))
}

// addrSum returns the ones' complement sum of an address's bytes: 4 bytes
// for an IPv4 address, 16 for anything else (the zero Addr sums to 0).
func addrSum(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return uint64(binary.BigEndian.Uint32(b[0:4])) + uint64(binary.BigEndian.Uint32(b[4:8])) +
		uint64(binary.BigEndian.Uint32(b[8:12])) + uint64(binary.BigEndian.Uint32(b[12:16]))
}

// PseudoHeaderSum returns the running checksum of the pseudo-header that
// the TCP (or UDP) checksum covers, ready to pass to Checksum as its
// initial value.
//
// Each address contributes its own bytes: an address for which Is4 reports
// true counts as the 4 bytes of an IPv4 pseudo-header (RFC 9293 §3.1), any
// other as the 16 bytes of an IPv6 one (RFC 8200 §8.1). An IPv4-mapped IPv6
// address is therefore treated as IPv6; use Unmap first if the packet is
// really IPv4. The protocol and the upper-layer length give the same sum
// in either layout (zero padding does not change a ones' complement sum),
// so length may be anything from 0 to 2^32-1.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	l := uint64(uint32(length))
	acc := addrSum(src) + addrSum(dst) + uint64(proto) + (l >> 16) + (l & 0xffff)
	return uint32(fold64(acc))
}

// TCPChecksumOK reports whether segment, a whole TCP segment (header,
// options and payload) exchanged between src and dst, carries a correct
// checksum (RFC 9293 §3.1). Addresses are taken as PseudoHeaderSum takes
// them.
func TCPChecksumOK(src, dst netip.Addr, segment []byte) bool {
	return FinishChecksum(Checksum(segment, PseudoHeaderSum(src, dst, ProtocolTCP, len(segment)))) == 0
}

// tcpChecksum computes the checksum to store in segment, whose checksum
// field must be zero.
func tcpChecksum(src, dst netip.Addr, segment []byte) uint16 {
	return FinishChecksum(Checksum(segment, PseudoHeaderSum(src, dst, ProtocolTCP, len(segment))))
}
