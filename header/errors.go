package header

import "strconv"

// ErrorKind says what kind of problem a parser found. The zero value is not
// a kind any function reports.
type ErrorKind uint8

// The kinds of problem, each with a sentinel error of the same name with an
// Err prefix.
const (
	// KindTruncated: the buffer ends before the header does.
	KindTruncated ErrorKind = iota + 1
	// KindBadVersion: the IP version nibble is not the expected one.
	KindBadVersion
	// KindBadHeaderLength: the IPv4 IHL is below 5 or reaches past the
	// packet (RFC 791 §3.1).
	KindBadHeaderLength
	// KindBadTotalLength: the IP length field disagrees with the buffer or
	// with the header length (RFC 791 §3.1, RFC 8200 §3).
	KindBadTotalLength
	// KindBadDataOffset: the TCP data offset is below 5 or reaches past the
	// segment (RFC 9293 §3.1).
	KindBadDataOffset
	// KindBadOptionLength: a TCP option's length byte is missing, below 2,
	// runs past the options, or is wrong for the option's kind (RFC 9293
	// §3.2, RFC 7323, RFC 2018).
	KindBadOptionLength
	// KindBadChecksum: an IPv4 header checksum or a TCP checksum does not
	// verify (RFC 1071, RFC 791 §3.1, RFC 9293 §3.1).
	KindBadChecksum
	// KindNotTCP: the IP protocol, or the last IPv6 next header, is not 6.
	KindNotTCP
	// KindFragment: the packet is an IP fragment. This package does not
	// reassemble (RFC 791 §3.2, RFC 8200 §4.5).
	KindFragment
	// KindShortBuffer: a builder was given a buffer too small for what it
	// was asked to write. Only builders report it.
	KindShortBuffer
	// KindBadAddress: a builder was given addresses that are invalid or of
	// mixed families. Only builders report it.
	KindBadAddress
)

var kindNames = [...]string{
	KindTruncated:       "truncated",
	KindBadVersion:      "bad version",
	KindBadHeaderLength: "bad header length",
	KindBadTotalLength:  "bad total length",
	KindBadDataOffset:   "bad data offset",
	KindBadOptionLength: "bad option length",
	KindBadChecksum:     "bad checksum",
	KindNotTCP:          "not TCP",
	KindFragment:        "fragment",
	KindShortBuffer:     "buffer too small",
	KindBadAddress:      "bad address",
}

// String returns a short lower-case description of the kind, such as
// "bad data offset".
func (k ErrorKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// Error is the error type of every function in this package that can fail.
//
// Layer names the header at fault: "ipv4", "ipv6", "tcp" or "tcp option",
// or "ip" when ParsePacket cannot tell the version (an empty buffer, or a
// version nibble that is neither 4 nor 6).
// Offset is the byte offset of the field at fault, counted from the start of
// the buffer handed to the function that was called (so ParsePacket counts
// from the start of the IP header, TCP.Options from the start of the TCP
// header, and ParseTCPOptions from the start of its argument). For
// KindTruncated and KindShortBuffer it is the length of the buffer, the
// point where the data ran out.
//
// Value is the offending field as it stands on the wire (the version
// nibble, the IHL or data offset in 32-bit words, the length field, the
// option length byte, the protocol number), or for KindTruncated and
// KindShortBuffer the number of bytes that were needed. It is -1 when there
// is nothing to show, for instance when an option's length byte is missing.
type Error struct {
	Layer  string
	Kind   ErrorKind
	Offset int
	Value  int
}

// The sentinel errors. Each is an *Error with only Kind set; errors.Is
// matches any *Error of the same kind against it.
var (
	ErrTruncated       error = &Error{Kind: KindTruncated}
	ErrBadVersion      error = &Error{Kind: KindBadVersion}
	ErrBadHeaderLength error = &Error{Kind: KindBadHeaderLength}
	ErrBadTotalLength  error = &Error{Kind: KindBadTotalLength}
	ErrBadDataOffset   error = &Error{Kind: KindBadDataOffset}
	ErrBadOptionLength error = &Error{Kind: KindBadOptionLength}
	ErrBadChecksum     error = &Error{Kind: KindBadChecksum}
	ErrNotTCP          error = &Error{Kind: KindNotTCP}
	ErrFragment        error = &Error{Kind: KindFragment}
	ErrShortBuffer     error = &Error{Kind: KindShortBuffer}
	ErrBadAddress      error = &Error{Kind: KindBadAddress}
)

// Error formats e as "layer: problem (at byte N)", for example
// "tcp: bad data offset 3 (at byte 12)" or
// "ipv4: truncated: need 20 bytes, have 12". A sentinel, which has no
// layer, formats as "header: " and the kind.
func (e *Error) Error() string {
	if e.Layer == "" {
		return "header: " + e.Kind.String()
	}
	var buf [96]byte
	b := append(buf[:0], e.Layer...)
	b = append(b, ": "...)
	b = append(b, e.Kind.String()...)
	switch e.Kind {
	case KindTruncated, KindShortBuffer:
		b = append(b, ": need "...)
		b = strconv.AppendInt(b, int64(e.Value), 10)
		b = append(b, " bytes, have "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		return string(b)
	case KindNotTCP:
		if e.Value >= 0 {
			b = append(b, " (protocol "...)
			b = strconv.AppendInt(b, int64(e.Value), 10)
			b = append(b, ')')
		}
	case KindBadChecksum, KindFragment, KindBadAddress:
	default:
		if e.Value >= 0 {
			b = append(b, ' ')
			b = strconv.AppendInt(b, int64(e.Value), 10)
		}
	}
	b = append(b, " (at byte "...)
	b = strconv.AppendInt(b, int64(e.Offset), 10)
	b = append(b, ')')
	return string(b)
}

// Is reports whether target is an *Error of the same kind. A target that
// also names a Layer matches only errors from that layer, so both
// errors.Is(err, ErrBadChecksum) and
// errors.Is(err, &Error{Layer: "tcp", Kind: KindBadChecksum}) work. The
// target's Offset and Value are ignored.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return t.Kind == e.Kind && (t.Layer == "" || t.Layer == e.Layer)
}

// newError builds the *Error that a parser returns.
func newError(layer string, kind ErrorKind, offset, value int) error {
	return &Error{Layer: layer, Kind: kind, Offset: offset, Value: value}
}

// truncated reports that a buffer of length have is shorter than need.
func truncated(layer string, have, need int) error {
	return &Error{Layer: layer, Kind: KindTruncated, Offset: have, Value: need}
}
