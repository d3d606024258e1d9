package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/tcpstate/tcpstate/header"
)

// A tap on an Offloader. Wrapping a TUN device with offloads must not
// change what crosses it: the stack keeps moving TCP segments of up to
// 64 KiB with their checksums partial, and the tap records them as a
// capture tool on the host sees them on the device — one packet per
// super-segment, as tcpdump shows a GSO interface — but with the
// checksum the device will complete (or has left partial) filled in, in
// the captured copy only, so that a reader does not flag it as bad.

// ErrNoOffload is what a TapEndpoint's Offload returns (and its
// WriteOffload wraps) when the endpoint it wraps is not an Offloader.
var ErrNoOffload = errors.New("link: tap: the wrapped endpoint has no offloads")

// Offload implements Offloader: it returns the wrapped endpoint's Offload
// if that endpoint is an Offloader, or else ErrNoOffload. A stack takes
// the tap's offload path exactly when it would take the wrapped
// endpoint's.
func (t *TapEndpoint) Offload() error {
	if t.off == nil {
		return ErrNoOffload
	}
	return t.off.Offload()
}

// ReadPacketsOffload implements Offloader: it reads from the wrapped
// endpoint's ReadPacketsOffload and records each packet, inbound, as it
// came: a TCP segment of up to MaxOffloadPacket bytes stays one record.
// A packet the link vouches for (trusted) whose TCP or UDP checksum
// field holds only the pseudo-header sum — the kernel left it partial,
// virtio-net NEEDS_CSUM (include/linux/virtio_net.h,
// virtio_net_hdr_from_skb) — is recorded with the checksum completed;
// the packet handed to the caller is left as it is. If the wrapped
// endpoint is not an Offloader, it is ReadPackets, trusting nothing.
func (t *TapEndpoint) ReadPacketsOffload(bufs [][]byte, sizes []int, trusted []bool) (int, error) {
	if t.off == nil {
		n, err := t.ReadPackets(bufs, sizes[:min(len(sizes), len(trusted))])
		clear(trusted[:n])
		return n, err
	}
	n, err := t.off.ReadPacketsOffload(bufs, sizes, trusted)
	if n = min(n, len(bufs), len(sizes), len(trusted)); n > 0 {
		t.mu.Lock()
		ts := t.now()
		for i := range n {
			size := max(sizes[i], 0)
			p := bufs[i][:min(size, len(bufs[i]))]
			if trusted[i] && size <= len(bufs[i]) && t.err == nil {
				p = t.completeIfPartial(p)
			}
			t.record(ts, p, size, ngFlagInbound)
		}
		t.mu.Unlock()
	}
	return n, err
}

// WriteOffload implements Offloader: it writes the packet through the
// wrapped endpoint's WriteOffload and, if that succeeds, records it,
// outbound, as one packet: the pieces joined, up to MaxOffloadPacket
// bytes however many segments of mss the link will cut it into. A TCP
// packet's checksum field holds the pseudo-header sum, which the link
// completes (Offloader.WriteOffload); the record has it completed as the
// kernel's skb_checksum_help (net/core/dev.c) does: the ones' complement
// sum of the TCP header and payload, seeded with the field, complemented
// (RFC 1071). The pieces themselves are not changed. As with
// WritePackets, the tap's lock is held across the write, so a reply the
// link delivers at once is never recorded before this packet. If the
// wrapped endpoint is not an Offloader, it returns an error wrapping
// ErrNoOffload.
func (t *TapEndpoint) WriteOffload(pieces [][]byte, mss int) error {
	if t.off == nil {
		return fmt.Errorf("link: tap: write with offloads: %w", ErrNoOffload)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.off.WriteOffload(pieces, mss); err != nil {
		return err
	}
	if t.err != nil || len(pieces) == 0 {
		return nil
	}
	ts := t.now()
	total := 0
	for _, p := range pieces {
		total += len(p)
	}
	n := min(total, PcapSnapLen)
	b := t.scratchFor(n)
	k := 0
	for _, p := range pieces {
		if k >= n {
			break
		}
		k += copy(b[k:], p)
	}
	if n == total {
		// The link completes only a TCP packet's checksum (it sends
		// anything else as it is).
		if start, field, _, ok := transportChecksum(b, false); ok {
			finishChecksum(b, start, field, false)
		}
	}
	t.record(ts, b, total, ngFlagOutbound)
	return nil
}

// completeIfPartial returns p, or, if p's TCP or UDP checksum field holds
// just the pseudo-header sum, a copy of p in t.scratch with the checksum
// completed. t.mu must be held.
func (t *TapEndpoint) completeIfPartial(p []byte) []byte {
	start, field, pseudo, ok := transportChecksum(p, true)
	if !ok || !sameOnes(binary.BigEndian.Uint16(p[field:]), uint16(pseudo)) {
		// Complete already (the kernel verified it: DATA_VALID), or
		// not a packet whose checksum we can place: as it came.
		return p
	}
	// A checksum that happens to equal the pseudo-header sum and is
	// complete stays the same when completed again: with the field
	// holding P, the completed value is ^(sum(rest) + P), which is the
	// field itself when the segment's checksum was already right.
	b := t.scratchFor(len(p))
	copy(b, p)
	finishChecksum(b, start, field, field-start == 6) // UDP's field is at 6, TCP's at 16
	return b
}

// scratchFor returns t.scratch cut to n bytes, growing it if needed.
// t.mu must be held.
func (t *TapEndpoint) scratchFor(n int) []byte {
	if cap(t.scratch) < n {
		t.scratch = make([]byte, max(n, MaxOffloadPacket))
	}
	return t.scratch[:n]
}

// sameOnes reports whether two 16-bit ones' complement numbers are equal,
// taking 0x0000 and 0xffff, the two zeros, as one.
func sameOnes(a, b uint16) bool {
	if a == 0xffff {
		a = 0
	}
	if b == 0xffff {
		b = 0
	}
	return a == b
}

// finishChecksum completes the transport checksum of p, whose transport
// header starts at start and whose checksum field, at field, holds the
// pseudo-header sum: the field becomes the complemented ones' complement
// sum from start to the end of p, the field included (skb_checksum_help).
// A UDP checksum computed as zero goes as all ones (RFC 768).
func finishChecksum(p []byte, start, field int, udp bool) {
	sum := header.FinishChecksum(header.Checksum(p[start:], 0))
	if sum == 0 && udp {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(p[field:], sum)
}

// transportChecksum finds the transport checksum of p, a whole IP packet
// carrying TCP (or, if udpToo, UDP): over IPv4 and not a fragment (RFC
// 791), or over IPv6 with no extension header (RFC 8200), whose IP
// length field counts exactly len(p) — what a TUN device with offloads
// passes (drivers/net/tun.c hands over one IP packet per read; the
// header it checked, Check in link/tun, rejects any other length). It
// returns the offsets of the transport header and of its checksum field,
// and the pseudo-header sum over the transport length (RFC 9293 §3.1,
// RFC 768, RFC 8200 §8.1); ok is false for anything else. It never
// panics.
func transportChecksum(p []byte, udpToo bool) (start, field int, pseudo uint32, ok bool) {
	var src, dst netip.Addr
	var proto uint8
	be := binary.BigEndian
	switch {
	case len(p) >= header.IPv4MinLen && p[0]>>4 == 4:
		start = int(p[0]&0x0f) * 4
		if start < header.IPv4MinLen || start > len(p) || int(be.Uint16(p[2:4])) != len(p) {
			return 0, 0, 0, false
		}
		if be.Uint16(p[6:8])&0x3fff != 0 { // MF or a fragment offset
			return 0, 0, 0, false
		}
		proto = p[9]
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
	case len(p) >= header.IPv6MinLen && p[0]>>4 == 6:
		start = header.IPv6MinLen
		if int(be.Uint16(p[4:6])) != len(p)-start {
			return 0, 0, 0, false
		}
		proto = p[6]
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	default:
		return 0, 0, 0, false
	}
	switch {
	case proto == header.ProtocolTCP && len(p)-start >= header.TCPMinLen:
		field = start + 16
	case proto == protocolUDP && udpToo && len(p)-start >= 8:
		field = start + 6
	default:
		return 0, 0, 0, false
	}
	return start, field, header.PseudoHeaderSum(src, dst, proto, len(p)-start), true
}

// protocolUDP is UDP's IP protocol number (RFC 768).
const protocolUDP = 17
