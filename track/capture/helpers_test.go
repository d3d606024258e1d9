package capture

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.7")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8:ffff::2")
)

// seg describes one TCP segment to build.
type seg struct {
	src, dst netip.AddrPort
	flags    header.TCPFlags
	seq, ack seqnum.Value
	win      uint16
	opts     header.TCPOptions
	payload  int
}

// build returns the IP packet for s, with checksums set, and the Packet
// that decoding it must give (T and Wire aside).
func (s seg) build(t testing.TB) ([]byte, Packet) {
	t.Helper()
	b := make([]byte, 65536)
	n, err := header.BuildPacket(b, s.src.Addr(), s.dst.Addr(), 64,
		&header.TCPFields{SrcPort: s.src.Port(), DstPort: s.dst.Port(), Seq: s.seq, Ack: s.ack, Flags: s.flags, Window: s.win},
		&s.opts, bytes.Repeat([]byte{0xab}, s.payload))
	if err != nil {
		t.Fatal(err)
	}
	return b[:n], Packet{Src: s.src, Dst: s.dst, Flags: s.flags, Seq: s.seq, Ack: s.ack,
		Window: s.win, PayloadLen: s.payload, Options: s.opts}
}

// insertIPv6Ext puts extension header ext (whose first byte is set to the
// packet's next header) after p's fixed IPv6 header, with nh as the new
// next header.
func insertIPv6Ext(p []byte, nh uint8, ext []byte) []byte {
	ext = append([]byte(nil), ext...)
	ext[0] = p[6]
	out := append(append(append([]byte(nil), p[:40]...), ext...), p[40:]...)
	out[6] = nh
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

// udp4 returns an IPv4 UDP datagram.
func udp4(payload int) []byte {
	b := make([]byte, 28+payload)
	header.PutIPv4(b, &header.IPv4Fields{Src: v4a, Dst: v4b, Protocol: 17, TTL: 64, PayloadLen: 8 + payload})
	binary.BigEndian.PutUint16(b[20:], 53)
	binary.BigEndian.PutUint16(b[22:], 5353)
	binary.BigEndian.PutUint16(b[24:], uint16(8+payload))
	return b
}

// tcase is one IP packet of the test captures and what reading it gives.
type tcase struct {
	name string
	ip   []byte
	// snap, when non-zero, keeps only the first snap bytes of the IP
	// packet in the capture.
	snap int
	// want is the decoded packet (T and Wire aside) when kind is "tcp".
	want Packet
	// kind is "tcp", "nontcp", "fragment" or the malformed reason.
	kind string
	// family is the packet's IP version, for LINKTYPE_IPV4 and _IPV6.
	family int
}

// cases returns the test packets: every flag combination of a
// connection's life, both IP versions, options of every kind, IPv6
// extension headers, fragments, a headers-only snap length, options cut
// by the snap length, and frames that are not TCP or are malformed.
func cases(t testing.TB) []tcase {
	t.Helper()
	c4 := netip.AddrPortFrom(v4a, 40000)
	s4 := netip.AddrPortFrom(v4b, 80)
	c6 := netip.AddrPortFrom(v6a, 50000)
	s6 := netip.AddrPortFrom(v6b, 443)
	synOpts := header.TCPOptions{MSS: 1460, HasMSS: true, WindowScale: 7, HasWindowScale: true,
		SACKPermitted: true, TSVal: 1000, TSEcr: 0, HasTimestamps: true}
	var out []tcase
	add := func(name string, s seg, snap int) {
		ip, want := s.build(t)
		fam := 4
		if s.src.Addr().Is6() {
			fam = 6
		}
		if snap > 0 {
			want.Truncated = true
		}
		out = append(out, tcase{name: name, ip: ip, snap: snap, want: want, kind: "tcp", family: fam})
	}
	add("syn4", seg{src: c4, dst: s4, flags: header.SYN, seq: 100, win: 64240, opts: synOpts}, 0)
	add("synack4", seg{src: s4, dst: c4, flags: header.SYN | header.ACK, seq: 5000, ack: 101, win: 65160, opts: synOpts}, 0)
	add("data4", seg{src: c4, dst: s4, flags: header.PSH | header.ACK, seq: 101, ack: 5001, win: 502,
		opts: header.TCPOptions{TSVal: 1001, TSEcr: 77, HasTimestamps: true}, payload: 1000}, 0)
	sack := header.TCPOptions{NumSACK: 3, TSVal: 9, TSEcr: 8, HasTimestamps: true}
	sack.SACKBlocks[0] = header.SACKBlock{Left: 2000, Right: 3000}
	sack.SACKBlocks[1] = header.SACKBlock{Left: 4000, Right: 5000}
	sack.SACKBlocks[2] = header.SACKBlock{Left: 0xfffffff0, Right: 0x10}
	add("sack6", seg{src: s6, dst: c6, flags: header.ACK, seq: 7, ack: 1001, win: 100, opts: sack}, 0)
	add("fin4", seg{src: c4, dst: s4, flags: header.FIN | header.ACK, seq: 1101, ack: 5001, win: 502}, 0)
	add("rst6", seg{src: c6, dst: s6, flags: header.RST, seq: 0xffffffff}, 0)
	add("ece-cwr-urg6", seg{src: c6, dst: s6, flags: header.ECE | header.CWR | header.URG | header.ACK, seq: 1, ack: 2, win: 3, payload: 10}, 0)
	// A headers-only capture (tcpdump -s 96 on Ethernet keeps 82 bytes of
	// IP): the payload length still comes from the IP header.
	add("headers-only4", seg{src: c4, dst: s4, flags: header.ACK, seq: 5, ack: 6, win: 7,
		opts: header.TCPOptions{TSVal: 1, TSEcr: 2, HasTimestamps: true}, payload: 1448}, 82)
	add("headers-only6", seg{src: c6, dst: s6, flags: header.ACK | header.PSH, seq: 5, ack: 6, win: 7, payload: 1200}, 60)

	// Options cut by the snap length. PutTCPOptions lays a SYN's options
	// out as MSS, SACK-permitted, timestamps, NOP, window scale: a capture
	// that ends inside the timestamps keeps MSS and SACK-permitted only.
	ip, want := seg{src: c4, dst: s4, flags: header.SYN, seq: 1, win: 1, opts: synOpts}.build(t)
	if ip[44] != header.OptSACKPermitted || ip[46] != header.OptTimestamps {
		t.Fatalf("unexpected option layout %x", ip[40:60])
	}
	want.Options = header.TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true}
	want.Truncated = true
	out = append(out, tcase{name: "options-cut4", ip: ip, snap: 20 + 20 + 4 + 2 + 5, want: want, kind: "tcp", family: 4})

	// IPv6 with a Hop-by-Hop header (PadN) and a Destination Options
	// header, then TCP.
	ip, want = seg{src: c6, dst: s6, flags: header.ACK, seq: 9, ack: 10, win: 11, payload: 33}.build(t)
	ip = insertIPv6Ext(ip, protoDestOpts, []byte{0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	ip = insertIPv6Ext(ip, protoHopByHop, []byte{0, 0, 1, 4, 0, 0, 0, 0})
	out = append(out, tcase{name: "ipv6-ext", ip: ip, want: want, kind: "tcp", family: 6})

	// IPv6 first fragment (offset 0, M set): the TCP header is there; the
	// payload length is the fragment's.
	ip, want = seg{src: c6, dst: s6, flags: header.ACK, seq: 9, ack: 10, win: 11, payload: 100}.build(t)
	ip = insertIPv6Ext(ip, protoFragment, []byte{0, 0, 0, 1, 0, 0, 0, 42})
	out = append(out, tcase{name: "ipv6-frag-first", ip: ip, want: want, kind: "tcp", family: 6})
	// And a later fragment.
	later := make([]byte, 40+8+64)
	header.PutIPv6(later, &header.IPv6Fields{Src: v6a, Dst: v6b, NextHeader: protoFragment, HopLimit: 64, PayloadLen: 72})
	copy(later[40:], []byte{protoTCP, 0, 0x05, 0xc8, 0, 0, 0, 42}) // offset 185*8
	out = append(out, tcase{name: "ipv6-frag-later", ip: later, kind: "fragment", family: 6})

	// IPv4 first fragment (MF set) decodes; a later one is skipped.
	ip, want = seg{src: c4, dst: s4, flags: header.ACK, seq: 1, ack: 1, win: 1, payload: 64}.build(t)
	ip[6] |= 0x20
	ip[6] &^= 0x40
	out = append(out, tcase{name: "ipv4-frag-first", ip: ip, want: want, kind: "tcp", family: 4})
	ip = append([]byte(nil), ip...)
	binary.BigEndian.PutUint16(ip[6:], 185)
	out = append(out, tcase{name: "ipv4-frag-later", ip: ip, kind: "fragment", family: 4})

	out = append(out, tcase{name: "udp4", ip: udp4(20), kind: "nontcp", family: 4})
	icmp6 := make([]byte, 48)
	header.PutIPv6(icmp6, &header.IPv6Fields{Src: v6a, Dst: v6b, NextHeader: 58, HopLimit: 255, PayloadLen: 8})
	out = append(out, tcase{name: "icmp6", ip: icmp6, kind: "nontcp", family: 6})

	// Malformed: an IPv4 header length of 8 bytes; a TCP data offset of
	// 4 words; a total length shorter than the headers; an IPv6
	// extension header running past the capture; garbage.
	ip, _ = seg{src: c4, dst: s4, flags: header.ACK}.build(t)
	bad := append([]byte(nil), ip...)
	bad[0] = 0x42
	out = append(out, tcase{name: "bad-ihl", ip: bad, kind: errIPv4HdrLen.Reason, family: 4})
	bad = append([]byte(nil), ip...)
	bad[20+12] = 4 << 4
	out = append(out, tcase{name: "bad-doff", ip: bad, kind: errTCPDataOffset.Reason, family: 4})
	bad = append([]byte(nil), ip...)
	binary.BigEndian.PutUint16(bad[2:], 30)
	out = append(out, tcase{name: "short-total", ip: bad, kind: errIPLen.Reason, family: 4})
	ip, _ = seg{src: c6, dst: s6, flags: header.ACK}.build(t)
	bad = insertIPv6Ext(ip, protoHopByHop, []byte{0, 200, 0, 0, 0, 0, 0, 0})
	out = append(out, tcase{name: "ipv6-ext-overrun", ip: bad, kind: errIPv6ExtShort.Reason, family: 6})
	out = append(out, tcase{name: "garbage", ip: []byte{0x45, 0xde, 0xad}, kind: errIPShort.Reason, family: 4})
	return out
}

// linkVariant frames IP packets for one link type.
type linkVariant struct {
	name string
	link LinkType
	// hdr returns the link-layer header for an IP packet of the family.
	hdr func(family int) []byte
	// families the link type can carry.
	only int
}

func etherHdr(tags ...uint16) func(int) []byte {
	return func(family int) []byte {
		h := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
		for _, tpid := range tags {
			h = binary.BigEndian.AppendUint16(h, tpid)
			h = binary.BigEndian.AppendUint16(h, 0x2000|100) // PCP 1, VID 100
		}
		return binary.BigEndian.AppendUint16(h, etherTypeOf(family))
	}
}

func etherTypeOf(family int) uint16 {
	if family == 6 {
		return etherTypeIPv6
	}
	return etherTypeIPv4
}

var linkVariants = []linkVariant{
	{name: "ethernet", link: LinkEthernet, hdr: etherHdr()},
	{name: "ethernet-vlan", link: LinkEthernet, hdr: etherHdr(etherTypeVLAN)},
	{name: "ethernet-qinq", link: LinkEthernet, hdr: etherHdr(etherTypeQinQ, etherTypeVLAN)},
	{name: "sll", link: LinkLinuxSLL, hdr: func(family int) []byte {
		// Outgoing (4), ARPHRD_ETHER, 6-byte address, protocol.
		h := []byte{0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}
		return binary.BigEndian.AppendUint16(h, etherTypeOf(family))
	}},
	{name: "sll2", link: LinkLinuxSLL2, hdr: func(family int) []byte {
		h := binary.BigEndian.AppendUint16(nil, etherTypeOf(family))
		// Reserved, interface index 3, ARPHRD_ETHER, host (0), 6-byte
		// address.
		return append(h, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0)
	}},
	{name: "raw", link: LinkRaw, hdr: func(int) []byte { return nil }},
	{name: "ipv4", link: LinkIPv4, hdr: func(int) []byte { return nil }, only: 4},
	{name: "ipv6", link: LinkIPv6, hdr: func(int) []byte { return nil }, only: 6},
}

// record is one frame of a test capture.
type record struct {
	link LinkType
	data []byte
	wire int
	ts   time.Time
	tc   tcase
}

// records frames every case for link variant lv, at timestamps one
// 1.000123457 s apart from base.
func records(lv linkVariant, cs []tcase, base time.Time) []record {
	var out []record
	for _, c := range cs {
		if lv.only != 0 && c.family != lv.only {
			continue
		}
		h := lv.hdr(c.family)
		data := append(append([]byte(nil), h...), c.ip...)
		wire := len(data)
		if c.snap > 0 {
			data = data[:len(h)+c.snap]
		}
		ts := base.Add(time.Duration(len(out)) * 1000123457)
		out = append(out, record{link: lv.link, data: data, wire: wire, ts: ts, tc: c})
	}
	return out
}
