package header

import (
	"encoding/binary"
	"net/netip"

	"github.com/tcpstate/tcpstate/seqnum"
)

// TCPMinLen is the length of a TCP header without options (RFC 9293 §3.1).
const TCPMinLen = 20

// TCPMaxLen is the longest TCP header: a data offset of 15 words.
const TCPMaxLen = 60

// TCPMaxOptionsLen is the most option bytes a TCP header holds (RFC 9293
// §3.1).
const TCPMaxOptionsLen = TCPMaxLen - TCPMinLen

// TCP is a view of a TCP segment: header, options and payload. Use ParseTCP
// (or ParsePacket) to obtain one from received bytes. The accessors of a
// view that has not been through ParseTCP may panic if it is shorter than
// TCPMinLen; OptionBytes, Payload and Options clamp to the slice.
type TCP []byte

// ParseTCP checks that b holds a TCP header and returns it as a view. It
// checks that b holds at least TCPMinLen bytes (ErrTruncated) and that the
// data offset is at least 5 words and does not reach past the end of b
// (ErrBadDataOffset; RFC 9293 §3.1). It checks neither the options (see
// Options) nor the checksum, which needs the addresses of the pseudo-header
// (see TCPChecksumOK, or ParsePacket, which checks it).
func ParseTCP(b []byte) (TCP, error) {
	return parseTCP(b, 0)
}

// parseTCP is ParseTCP with error offsets counted from base bytes before b.
func parseTCP(b []byte, base int) (TCP, error) {
	const layer = "tcp"
	if len(b) < TCPMinLen {
		return nil, truncated(layer, base+len(b), base+TCPMinLen)
	}
	off := int(b[12]>>4) * 4
	if off < TCPMinLen || off > len(b) {
		return nil, newError(layer, KindBadDataOffset, base+12, off/4)
	}
	return TCP(b), nil
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:2]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:4]) }

// Seq returns the sequence number.
func (t TCP) Seq() seqnum.Value { return seqnum.Value(binary.BigEndian.Uint32(t[4:8])) }

// Ack returns the acknowledgment number, meaningful when the ACK flag is
// set (RFC 9293 §3.1).
func (t TCP) Ack() seqnum.Value { return seqnum.Value(binary.BigEndian.Uint32(t[8:12])) }

// DataOffset returns the header length in bytes, options included: the
// data offset field times four.
func (t TCP) DataOffset() int { return int(t[12]>>4) * 4 }

// Flags returns the eight control bits. The four reserved bits before them
// (RFC 9293 §3.1) are not included.
func (t TCP) Flags() TCPFlags { return TCPFlags(t[13]) }

// Window returns the window field, not yet scaled (RFC 7323 §2.3).
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:16]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:18]) }

// Urgent returns the urgent pointer field, meaningful when URG is set.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[18:20]) }

// OptionBytes returns the raw option bytes between the fixed header and
// the data offset.
func (t TCP) OptionBytes() []byte {
	end := min(t.DataOffset(), len(t))
	if end < TCPMinLen {
		return nil
	}
	return t[TCPMinLen:end]
}

// Payload returns the segment's data, the bytes after the data offset.
func (t TCP) Payload() []byte {
	off := t.DataOffset()
	if off > len(t) {
		return nil
	}
	return t[off:]
}

// Options parses the header's options into *o, as ParseTCPOptions does.
// Error offsets are counted from the start of the TCP header. It allocates
// nothing when the options are well formed.
func (t TCP) Options(o *TCPOptions) error {
	return parseTCPOptions(t.OptionBytes(), o, TCPMinLen)
}

// ParseTCPOptions parses the option bytes b (the bytes between the fixed
// TCP header and the data offset) into *o, which it first resets to the
// zero value. It allocates nothing when the options are well formed.
//
// Following RFC 9293 §3.2: End of Option List (kind 0) ends parsing,
// whatever follows it; No-Operation (kind 1) is one byte and is skipped;
// every other option has a length byte that counts the kind and length
// bytes too. Options of unknown kind with a valid length are skipped
// (RFC 9293 §3.2, MUST-6). A known option that appears twice overwrites
// the earlier one.
//
// It fails with an *Error of layer "tcp option" and kind
// KindBadOptionLength, whose Offset is that of the length byte at fault and
// whose Value is that byte (-1 if it is missing), when the length byte is
// missing, below 2 or runs past b, or when a known kind has the wrong
// length: MSS must be 4 (RFC 9293 §3.2), Window Scale 3 (RFC 7323 §2.2),
// SACK-Permitted 2 (RFC 2018 §2), Timestamps 10 (RFC 7323 §3.2) and SACK
// 2+8n with n from 1 to MaxSACKBlocks (RFC 2018 §3). RFC 9293 §3.2
// (MUST-7) requires a receiver to cope with such illegal lengths and
// suggests resetting the connection; that choice is the caller's. On error
// *o holds what was parsed before the fault.
//
// Values are reported as received. In particular the caller must clamp a
// window scale above 14 (RFC 7323 §2.3) and apply the MSS rules of
// RFC 9293 §3.7.1.
func ParseTCPOptions(b []byte, o *TCPOptions) error {
	return parseTCPOptions(b, o, 0)
}

func parseTCPOptions(b []byte, o *TCPOptions, base int) error {
	const layer = "tcp option"
	*o = TCPOptions{}
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case OptEOL:
			return nil
		case OptNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return newError(layer, KindBadOptionLength, base+i+1, -1)
		}
		l := int(b[i+1])
		if l < 2 || l > len(b)-i {
			return newError(layer, KindBadOptionLength, base+i+1, l)
		}
		opt := b[i : i+l]
		bad := false
		switch kind {
		case OptMSS:
			if bad = l != 4; !bad {
				o.MSS = binary.BigEndian.Uint16(opt[2:4])
				o.HasMSS = true
			}
		case OptWindowScale:
			if bad = l != 3; !bad {
				o.WindowScale = opt[2]
				o.HasWindowScale = true
			}
		case OptSACKPermitted:
			if bad = l != 2; !bad {
				o.SACKPermitted = true
			}
		case OptTimestamps:
			if bad = l != 10; !bad {
				o.TSVal = binary.BigEndian.Uint32(opt[2:6])
				o.TSEcr = binary.BigEndian.Uint32(opt[6:10])
				o.HasTimestamps = true
			}
		case OptSACK:
			n := (l - 2) / 8
			if bad = (l-2)%8 != 0 || n < 1 || n > MaxSACKBlocks; !bad {
				// A second SACK option replaces the first entirely.
				o.SACKBlocks = [MaxSACKBlocks]SACKBlock{}
				for j := range n {
					p := opt[2+8*j:]
					o.SACKBlocks[j] = SACKBlock{
						Left:  seqnum.Value(binary.BigEndian.Uint32(p[0:4])),
						Right: seqnum.Value(binary.BigEndian.Uint32(p[4:8])),
					}
				}
				o.NumSACK = n
			}
		}
		if bad {
			return newError(layer, KindBadOptionLength, base+i+1, l)
		}
		i += l
	}
	return nil
}

// Lengths of the 4-byte-aligned pieces PutTCPOptions lays out.
const (
	mssLen     = 4  // MSS
	tsLen      = 12 // NOP,NOP,TS or SACKOK,TS
	sackOKLen  = 4  // NOP,NOP,SACKOK
	wsLen      = 4  // NOP,WS
	sackHdrLen = 4  // NOP,NOP,kind,len before the blocks
	sackBlkLen = 8
)

// optionLayout returns the length PutTCPOptions writes for o and the number
// of SACK blocks that fit.
func optionLayout(o *TCPOptions) (length, nsack int) {
	if o == nil {
		return 0, 0
	}
	if o.HasMSS {
		length += mssLen
	}
	if o.HasTimestamps {
		length += tsLen
	} else if o.SACKPermitted {
		length += sackOKLen
	}
	if o.HasWindowScale {
		length += wsLen
	}
	nsack = min(max(o.NumSACK, 0), MaxSACKBlocks)
	if nsack > 0 {
		nsack = min(nsack, (TCPMaxOptionsLen-length-sackHdrLen)/sackBlkLen)
	}
	if nsack > 0 {
		length += sackHdrLen + nsack*sackBlkLen
	}
	return length, nsack
}

// TCPOptionsLen returns the number of bytes PutTCPOptions writes for o, a
// multiple of 4 and at most TCPMaxOptionsLen. A nil o has no options.
func TCPOptionsLen(o *TCPOptions) int {
	n, _ := optionLayout(o)
	return n
}

// PutTCPOptions writes the options o asks for at the start of b and returns
// the number of bytes written, TCPOptionsLen(o), or 0 without writing if b
// is shorter than that. A value whose Has flag is false is not written.
//
// The layout is the one Linux uses, so traces read naturally and each
// multi-byte field is 4-byte aligned: MSS; then Timestamps, preceded by
// SACK-Permitted if that is asked for too and by NOP,NOP otherwise; then
// NOP,NOP,SACK-Permitted if there are no timestamps; then NOP,Window
// Scale; then NOP,NOP,SACK with the blocks. Every piece is a multiple of 4
// bytes, so no padding is needed at the end (RFC 9293 §3.1).
//
// The option space is 40 bytes. If o asks for more, SACK blocks are dropped
// from the end of o.SACKBlocks[:o.NumSACK] until the rest fits: at most 4
// blocks fit alone, 3 beside timestamps, and 2 beside timestamps, MSS and
// window scale (RFC 2018 §3). Put the most recent block first, as RFC 2018
// §4 asks, and it is the one kept. A NumSACK outside 0..MaxSACKBlocks is
// clamped into it.
func PutTCPOptions(b []byte, o *TCPOptions) int {
	n, nsack := optionLayout(o)
	if n == 0 || len(b) < n {
		return 0
	}
	b = b[:n]
	i := 0
	if o.HasMSS {
		b[0], b[1] = OptMSS, 4
		binary.BigEndian.PutUint16(b[2:4], o.MSS)
		i += mssLen
	}
	if o.HasTimestamps {
		if o.SACKPermitted {
			b[i], b[i+1] = OptSACKPermitted, 2
		} else {
			b[i], b[i+1] = OptNOP, OptNOP
		}
		b[i+2], b[i+3] = OptTimestamps, 10
		binary.BigEndian.PutUint32(b[i+4:i+8], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:i+12], o.TSEcr)
		i += tsLen
	} else if o.SACKPermitted {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptNOP, OptSACKPermitted, 2
		i += sackOKLen
	}
	if o.HasWindowScale {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptWindowScale, 3, o.WindowScale
		i += wsLen
	}
	if nsack > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptNOP, OptSACK, byte(2+nsack*sackBlkLen)
		i += sackHdrLen
		for _, blk := range o.SACKBlocks[:nsack] {
			binary.BigEndian.PutUint32(b[i:i+4], uint32(blk.Left))
			binary.BigEndian.PutUint32(b[i+4:i+8], uint32(blk.Right))
			i += sackBlkLen
		}
	}
	return i
}

// TCPFields holds the fixed TCP header fields that PutTCP writes.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         seqnum.Value
	Flags            TCPFlags
	Window, Urgent   uint16
}

// PutTCP writes a TCP segment at the start of b: the header from f, the
// options from o (nil for none) laid out as PutTCPOptions lays them out,
// and a copy of payload. The data offset is set to cover the options; the
// reserved bits and the checksum are left zero (set the checksum with
// SetTCPChecksum once the addresses are known). It returns the number of
// bytes written, or 0 without writing if b is shorter than
// TCPMinLen+TCPOptionsLen(o)+len(payload).
func PutTCP(b []byte, f *TCPFields, o *TCPOptions, payload []byte) int {
	optLen := TCPOptionsLen(o)
	hdrLen := TCPMinLen + optLen
	n := hdrLen + len(payload)
	if len(b) < n {
		return 0
	}
	b = b[:n]
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint32(b[4:8], uint32(f.Seq))
	binary.BigEndian.PutUint32(b[8:12], uint32(f.Ack))
	b[12] = byte(hdrLen/4) << 4
	b[13] = byte(f.Flags)
	binary.BigEndian.PutUint16(b[14:16], f.Window)
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[18:20], f.Urgent)
	if optLen > 0 {
		PutTCPOptions(b[TCPMinLen:hdrLen], o)
	}
	copy(b[hdrLen:], payload)
	return n
}

// SetTCPChecksum computes the checksum of seg, a whole TCP segment sent
// from src to dst, and stores it in the checksum field (RFC 9293 §3.1).
// The addresses are taken as PseudoHeaderSum takes them. A seg shorter
// than TCPMinLen is left alone.
func SetTCPChecksum(seg []byte, src, dst netip.Addr) {
	if len(seg) < TCPMinLen {
		return
	}
	seg[16], seg[17] = 0, 0
	binary.BigEndian.PutUint16(seg[16:18], tcpChecksum(src, dst, seg))
}
