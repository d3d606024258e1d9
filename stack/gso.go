package stack

import (
	"bytes"
	"encoding/binary"

	"github.com/tcpstate/tcpstate/header"
)

// Joining a connection's segments into one for a link with TCP
// segmentation offload (link.Offloader). A run the link will cut back
// into the same segments — which is what the kernel's tcp_gso_segment
// (net/ipv4/tcp_offload.c) does with a GSO packet — crosses the link as
// one packet of up to 64 KiB: one write instead of one per segment, and,
// when the kernel delivers it to a local socket, one segment to process
// instead of dozens.

// maxGSOLen bounds a joined packet: IPv4's total length field, and an
// IPv6 payload length without a jumbogram.
const maxGSOLen = 0xffff

// noJoin are the flags of a segment that goes on its own: the kernel
// keeps SYN, RST and URG on every segment it cuts, and CWR only on the
// first (tcp_gso_segment), so none of these survives a round trip.
const noJoin = header.SYN | header.RST | header.URG | header.CWR

// tcpHeaders finds, in one of the stack's own packets, the length of its
// IP header and of its IP and TCP headers together; ok is false for
// anything that is not TCP over IPv4 or IPv6 without extension headers.
func tcpHeaders(p []byte) (ipLen, hdrLen int, ok bool) {
	if len(p) < header.IPv4MinLen {
		return 0, 0, false
	}
	switch p[0] >> 4 {
	case 4:
		ipLen = int(p[0]&0x0f) * 4
		if ipLen < header.IPv4MinLen || p[9] != header.ProtocolTCP {
			return 0, 0, false
		}
	case 6:
		ipLen = header.IPv6MinLen
		if len(p) < ipLen || p[6] != header.ProtocolTCP {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	if len(p) < ipLen+header.TCPMinLen {
		return 0, 0, false
	}
	hdrLen = ipLen + int(p[ipLen+12]>>4)*4
	if hdrLen < ipLen+header.TCPMinLen || hdrLen > len(p) {
		return 0, 0, false
	}
	return ipLen, hdrLen, true
}

// gsoRun returns the end j of the run of packets from pkts[i] that can go
// as one GSO packet, and the segment size: j is i+1 when pkts[i] goes on
// its own. A run is of TCP segments of one connection whose headers are
// the same but for the lengths, checksums, sequence numbers and flags
// PSH and FIN (a FIN, and a short segment, only at the end); whose
// sequence numbers follow on; whose payloads all have the first one's
// length, but the last, which may be shorter; and which together fit in
// one IP packet. These are what the kernel cuts a GSO packet into
// (tcp_gso_segment: the headers repeated, the sequence number advanced,
// PSH and FIN on the last segment only).
func gsoRun(pkts [][]byte, i int) (j, mss int) {
	p0 := pkts[i]
	ipLen, hl, ok := tcpHeaders(p0)
	if !ok {
		return i + 1, 0
	}
	mss = len(p0) - hl
	f0 := header.TCPFlags(p0[ipLen+13])
	if mss <= 0 || f0&(noJoin|header.FIN) != 0 {
		return i + 1, 0
	}
	be := binary.BigEndian
	seq := be.Uint32(p0[ipLen+4:])
	total := len(p0)
	for j = i + 1; j < len(pkts); j++ {
		if len(pkts[j-1])-hl != mss {
			break // only the last segment may be short
		}
		p := pkts[j]
		n := len(p) - hl
		if n <= 0 || n > mss || total+n > maxGSOLen || !sameHeaders(p0, p, ipLen, hl) {
			break
		}
		if be.Uint32(p[ipLen+4:]) != seq+uint32((j-i)*mss) {
			break
		}
		f := header.TCPFlags(p[ipLen+13])
		if f&^(header.PSH|header.FIN) != f0&^header.PSH {
			break
		}
		total += n
		if f&header.FIN != 0 {
			return j + 1, mss
		}
	}
	return j, mss
}

// sameHeaders reports whether b has a's IP and TCP headers (hl bytes, the
// IP header ipLen of them) but for the fields that differ between the
// segments of one GSO packet: lengths, IPv4 ID and checksum, sequence
// number, flags and TCP checksum.
func sameHeaders(a, b []byte, ipLen, hl int) bool {
	if len(b) < hl {
		return false
	}
	if a[0]>>4 == 4 {
		if !bytes.Equal(a[0:2], b[0:2]) || !bytes.Equal(a[6:10], b[6:10]) || !bytes.Equal(a[12:ipLen], b[12:ipLen]) {
			return false
		}
	} else if !bytes.Equal(a[0:4], b[0:4]) || !bytes.Equal(a[6:ipLen], b[6:ipLen]) {
		return false
	}
	t, u := a[ipLen:hl], b[ipLen:hl]
	return bytes.Equal(t[0:4], u[0:4]) && // ports
		bytes.Equal(t[8:13], u[8:13]) && // ACK, data offset
		bytes.Equal(t[14:16], u[14:16]) && // window
		bytes.Equal(t[18:], u[18:]) // urgent pointer, options
}

// joinRun turns a run gsoRun found into the pieces of one GSO packet, in
// place: run[0] keeps its headers, now with the lengths of the whole and
// the last segment's flags, and every later element is cut to its
// payload. The checksums change incrementally (RFC 1624 §3): the IPv4
// header's for the new total length, and the TCP field — the partial
// pseudo-header sum build left for the link — for the new TCP length.
func joinRun(run [][]byte) {
	p0 := run[0]
	ipLen, hl, _ := tcpHeaders(p0)
	total := len(p0)
	for _, p := range run[1:] {
		total += len(p) - hl
	}
	be := binary.BigEndian
	last := run[len(run)-1]
	p0[ipLen+13] = last[ipLen+13]
	if p0[0]>>4 == 4 {
		old := be.Uint16(p0[2:4])
		be.PutUint16(p0[2:4], uint16(total))
		be.PutUint16(p0[10:12], ^onesUpdate(^be.Uint16(p0[10:12]), old, uint16(total)))
	} else {
		be.PutUint16(p0[4:6], uint16(total-ipLen))
	}
	oldLen, newLen := uint16(len(p0)-ipLen), uint16(total-ipLen)
	be.PutUint16(p0[ipLen+16:], onesUpdate(be.Uint16(p0[ipLen+16:]), oldLen, newLen))
	for k := 1; k < len(run); k++ {
		run[k] = run[k][hl:]
	}
}

// onesUpdate returns the ones' complement sum sum with the 16-bit word
// old replaced by new (RFC 1624 eqn. 3, on the sum rather than its
// complement).
func onesUpdate(sum, old, new uint16) uint16 {
	s := uint32(sum) + uint32(^old) + uint32(new)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}
