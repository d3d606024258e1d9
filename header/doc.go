// Package header parses and builds the IPv4, IPv6 and TCP headers that the
// tcpstate stack sends and receives.
//
// Parsing works on views: IPv4, IPv6 and TCP are byte slices with accessor
// methods, so reading a packet copies nothing and allocates nothing. The
// Parse functions check everything that an accessor later relies on (the
// version, the length fields, the IPv4 header checksum, the TCP data
// offset), so the accessors of a view that a Parse function returned never
// panic and never read past the packet. Input from the wire must always go
// through a Parse function (or ParsePacket) first; a view made by a plain
// conversion such as TCP(b) has had none of these checks.
//
// Every problem a parser finds is reported as an *Error, which carries the
// layer, the kind of problem and the byte offset at fault. Test the kind
// with errors.Is against the sentinels (ErrTruncated, ErrBadChecksum, ...);
// use errors.As to read the details.
//
// Building is the reverse: PutIPv4, PutIPv6, PutTCP and PutTCPOptions write
// into a caller's buffer and return the number of bytes written, and
// BuildPacket assembles a whole IP+TCP packet with both checksums set.
//
// The checksum is the Internet checksum of RFC 1071, computed eight bytes at
// a time; see Checksum, FinishChecksum and PseudoHeaderSum.
package header
