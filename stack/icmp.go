package stack

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// ICMP: echo replies, so ping works (RFC 792, RFC 4443 §4), and ICMP
// errors about our TCP segments, handled as RFC 5927 advises.

const (
	protoICMPv4 = 1
	protoICMPv6 = 58

	icmp4EchoReply   = 0
	icmp4Unreachable = 3
	icmp4Echo        = 8
	icmp6Unreachable = 1
	icmp6TooBig      = 2
	icmp6Echo        = 128
	icmp6EchoReply   = 129
)

// handleICMP takes an ICMP packet addressed to us and reports whether pkt
// was ICMP (handled or dropped); false means it is for TCP.
func (s *Stack) handleICMP(now time.Time, pkt []byte) bool {
	switch pkt[0] >> 4 {
	case 4:
		ip, err := header.ParseIPv4(pkt)
		if err != nil || ip.Protocol() != protoICMPv4 {
			return false
		}
		if !s.isLocal(ip.Dst()) || ip.IsFragment() {
			s.st.dropNotOurs.Add(1)
			return true
		}
		msg := ip.Payload()
		if len(msg) < 8 || header.FinishChecksum(header.Checksum(msg, 0)) != 0 {
			s.st.dropMalformed.Add(1)
			return true
		}
		switch msg[0] {
		case icmp4Echo:
			s.echoReply(ip.Dst(), ip.Src(), msg, icmp4EchoReply)
		case icmp4Unreachable:
			// Codes 2 (protocol), 3 (port) and 4 (fragmentation needed
			// with DF) are hard errors (RFC 1122 §4.2.3.9).
			s.icmpError(now, msg[8:], msg[1] >= 2 && msg[1] <= 4)
		}
		return true
	case 6:
		ip, err := header.ParseIPv6(pkt)
		if err != nil {
			return false
		}
		proto, msg, err := ip.TransportProtocol()
		if err != nil || proto != protoICMPv6 {
			return false
		}
		if !s.isLocal(ip.Dst()) {
			s.st.dropNotOurs.Add(1)
			return true
		}
		sum := header.PseudoHeaderSum(ip.Src(), ip.Dst(), protoICMPv6, len(msg))
		if len(msg) < 8 || header.FinishChecksum(header.Checksum(msg, sum)) != 0 {
			s.st.dropMalformed.Add(1)
			return true
		}
		switch msg[0] {
		case icmp6Echo:
			s.echoReply(ip.Dst(), ip.Src(), msg, icmp6EchoReply)
		case icmp6Unreachable:
			// Code 4 (port unreachable) is a hard error (RFC 4443 §3.1).
			s.icmpError(now, msg[8:], msg[1] == 4)
		case icmp6TooBig:
			s.icmpError(now, msg[8:], false)
		}
		return true
	}
	return false
}

// echoReply answers an echo request with the same identifier, sequence
// number and data.
func (s *Stack) echoReply(src, dst netip.Addr, req []byte, typ byte) {
	b := s.getBuf()
	defer s.putBuf(b)
	buf := *b
	hl := header.IPv4MinLen
	proto := uint8(protoICMPv4)
	if !src.Is4() {
		hl, proto = header.IPv6MinLen, protoICMPv6
	}
	if hl+len(req) > len(buf) {
		return
	}
	msg := buf[hl : hl+len(req)]
	copy(msg, req)
	msg[0], msg[1] = typ, 0
	msg[2], msg[3] = 0, 0
	var sum uint32
	if proto == protoICMPv6 {
		sum = header.PseudoHeaderSum(src, dst, protoICMPv6, len(msg))
	}
	binary.BigEndian.PutUint16(msg[2:], header.FinishChecksum(header.Checksum(msg, sum)))
	if src.Is4() {
		header.PutIPv4(buf, &header.IPv4Fields{Src: src, Dst: dst, Protocol: proto, TTL: s.ttl, PayloadLen: len(msg)})
	} else {
		header.PutIPv6(buf, &header.IPv6Fields{Src: src, Dst: dst, NextHeader: proto, HopLimit: s.ttl, PayloadLen: len(msg)})
	}
	s.st.icmpEchoReplies.Add(1)
	s.write([][]byte{buf[:hl+len(msg)]})
}

// icmpError handles an ICMP error whose payload quotes one of our packets:
// the IP header and at least the first 8 bytes of TCP (ports and sequence
// number). RFC 5927 §4.1: believe it only if the quoted sequence number is
// one we have sent and not had acknowledged. A hard error aborts a
// connection still opening (the peer's port is closed); in synchronized
// states every error is soft and changes nothing (RFC 5461).
func (s *Stack) icmpError(now time.Time, quoted []byte, hard bool) {
	s.st.icmpErrors.Add(1)
	if len(quoted) < 1 {
		return
	}
	var src, dst netip.Addr
	var tcpHdr []byte
	switch quoted[0] >> 4 {
	case 4:
		if len(quoted) < header.IPv4MinLen {
			return
		}
		ihl := int(quoted[0]&0xf) * 4
		if ihl < header.IPv4MinLen || len(quoted) < ihl+8 || quoted[9] != header.ProtocolTCP {
			return
		}
		src = netip.AddrFrom4([4]byte(quoted[12:16]))
		dst = netip.AddrFrom4([4]byte(quoted[16:20]))
		tcpHdr = quoted[ihl:]
	case 6:
		if len(quoted) < header.IPv6MinLen+8 || quoted[6] != header.ProtocolTCP {
			return
		}
		src = netip.AddrFrom16([16]byte(quoted[8:24]))
		dst = netip.AddrFrom16([16]byte(quoted[24:40]))
		tcpHdr = quoted[header.IPv6MinLen:]
	default:
		return
	}
	id := tcp.Tuple{
		Local:  netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcpHdr[0:])),
		Remote: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcpHdr[2:])),
	}
	seq := seqnum.Value(binary.BigEndian.Uint32(tcpHdr[4:]))
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.tc.Status()
	if !seq.InRange(st.SndUna, st.SndNxt) && !(st.State == tcp.SynSent && seq == st.ISS) {
		return // RFC 5927 §4.1: not a segment in flight — a forgery
	}
	if hard && st.State == tcp.SynSent {
		c.tc.Fail(now, tcp.ErrConnectionRefused)
		c.afterLocked(now)
	}
}
