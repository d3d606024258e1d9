//go:build linux

package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// segment is one TCP segment read from a capture.
type segment struct {
	when     time.Time
	src, dst netip.AddrPort
	seq, ack uint32
	flags    uint8
	payload  int
}

// TCP header flags (RFC 9293 section 3.1).
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// readPcap reads the TCP segments of a pcap file with Ethernet framing,
// the format StartCapture writes. Anything else in it (ARP, the UDP
// marker, ICMP) is skipped.
func readPcap(path string) ([]segment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 24 {
		return nil, errors.New("pcap: no file header")
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	default:
		switch binary.BigEndian.Uint32(data) {
		case 0xa1b2c3d4:
			bo = binary.BigEndian
		case 0xa1b23c4d:
			bo, nano = binary.BigEndian, true
		default:
			return nil, errors.New("pcap: bad magic")
		}
	}
	if lt := bo.Uint32(data[20:]); lt != 1 {
		return nil, fmt.Errorf("pcap: link type %d, want 1 (Ethernet)", lt)
	}
	var segs []segment
	for rest := data[24:]; len(rest) > 0; {
		if len(rest) < 16 {
			return nil, errors.New("pcap: truncated record header")
		}
		sec, frac, incl := bo.Uint32(rest), bo.Uint32(rest[4:]), int(bo.Uint32(rest[8:]))
		if incl > len(rest)-16 {
			return nil, errors.New("pcap: truncated record")
		}
		pkt := rest[16 : 16+incl]
		rest = rest[16+incl:]
		ns := int64(frac) * 1000
		if nano {
			ns = int64(frac)
		}
		if s, ok := parseEthernetTCP(pkt); ok {
			s.when = time.Unix(int64(sec), ns)
			segs = append(segs, s)
		}
	}
	return segs, nil
}

func parseEthernetTCP(p []byte) (segment, bool) {
	if len(p) < 14 {
		return segment{}, false
	}
	etype, ip := binary.BigEndian.Uint16(p[12:]), p[14:]
	var src, dst netip.Addr
	var l4 []byte
	switch etype {
	case 0x0800:
		if len(ip) < 20 || ip[9] != 6 {
			return segment{}, false
		}
		ihl, total := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if ihl < 20 || total < ihl || total > len(ip) {
			return segment{}, false
		}
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		l4 = ip[ihl:total]
	case 0x86dd:
		if len(ip) < 40 || ip[6] != 6 {
			return segment{}, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:]))
		if 40+plen > len(ip) {
			return segment{}, false
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		l4 = ip[40 : 40+plen]
	default:
		return segment{}, false
	}
	if len(l4) < 20 {
		return segment{}, false
	}
	off := int(l4[12]>>4) * 4
	if off < 20 || off > len(l4) {
		return segment{}, false
	}
	return segment{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4)),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:])),
		seq:     binary.BigEndian.Uint32(l4[4:]),
		ack:     binary.BigEndian.Uint32(l4[8:]),
		flags:   l4[13],
		payload: len(l4) - off,
	}, true
}

func count(segs []segment, f func(segment) bool) int {
	n := 0
	for _, s := range segs {
		if f(s) {
			n++
		}
	}
	return n
}

func fromServer(s segment) bool { return s.src.Port() == ServicePort || s.src.Port() == RefusedPort }

// extraChecks holds what each scenario must also show in its capture or
// its sockets, beyond Want.
var extraChecks = map[string]func(r Result, segs []segment) error{
	"close-wait-leak": func(r Result, segs []segment) error {
		// An orphaned FIN-WAIT-2 socket runs the FIN-WAIT-2 timer, which
		// ss calls "timewait" (net/ipv4/tcp.c, tcp_close; tcp_fin_timeout).
		for _, s := range r.Client {
			if s.State == tcp.FinWait2 && s.Timer != "timewait" {
				return fmt.Errorf("client FIN-WAIT-2 socket has timer %q, want the orphan's timewait timer", s.Timer)
			}
		}
		return nil
	},
	"half-close": func(r Result, segs []segment) error {
		finAt := -1
		for i, s := range segs {
			if !fromServer(s) && s.flags&flagFIN != 0 && finAt < 0 {
				finAt = i
			}
			if finAt >= 0 && fromServer(s) && s.payload > 0 {
				return nil
			}
		}
		return errors.New("no server data after the client's FIN in the capture")
	},
	"lost-final-ack": func(r Result, segs []segment) error {
		if n := count(segs, func(s segment) bool { return fromServer(s) && s.flags&flagFIN != 0 }); n != 2 {
			return fmt.Errorf("%d server FINs in the capture, want 2 (one retransmitted)", n)
		}
		return nil
	},
	"last-ack": func(r Result, segs []segment) error {
		if n := count(segs, func(s segment) bool { return fromServer(s) && s.flags&flagFIN != 0 }); n < 2 {
			return fmt.Errorf("%d server FINs in the capture, want at least 2", n)
		}
		return nil
	},
	"refused": func(r Result, segs []segment) error {
		if n := count(segs, func(s segment) bool { return fromServer(s) && s.flags&flagRST != 0 }); n != 1 {
			return fmt.Errorf("%d RSTs from the server in the capture, want 1", n)
		}
		return nil
	},
	"rst-abort": func(r Result, segs []segment) error {
		if n := count(segs, func(s segment) bool { return !fromServer(s) && s.flags&flagRST != 0 }); n != 1 {
			return fmt.Errorf("%d RSTs from the client in the capture, want 1", n)
		}
		return nil
	},
	"syn-flood": func(r Result, segs []segment) error {
		n := count(segs, func(s segment) bool { return s.flags&(flagSYN|flagACK) == flagSYN|flagACK })
		if n < 2*FloodSYNs {
			return fmt.Errorf("%d SYN-ACKs in the capture, want at least %d (each sent and retransmitted)", n, 2*FloodSYNs)
		}
		if n := count(segs, func(s segment) bool { return s.flags&flagRST != 0 }); n != 0 {
			return fmt.Errorf("%d RSTs in the capture, want none", n)
		}
		return nil
	},
	"lossy-transfer": func(r Result, segs []segment) error {
		// The router drops before the capture interface, so each loss
		// shows as a hole that a later, lower-sequence segment fills.
		var top uint32
		fills := 0
		for _, s := range segs {
			if fromServer(s) || s.payload == 0 {
				continue
			}
			if top != 0 && int32(s.seq-top) < 0 {
				fills++
			}
			if end := s.seq + uint32(s.payload); top == 0 || int32(end-top) > 0 {
				top = end
			}
		}
		if fills == 0 {
			return errors.New("no retransmitted client data in the capture")
		}
		return nil
	},
	"simultaneous-close": func(r Result, segs []segment) error {
		// Each FIN's acknowledgment number must not cover the other's
		// FIN: both were sent before either arrived.
		var fins []segment
		for _, s := range segs {
			if s.flags&flagFIN != 0 {
				fins = append(fins, s)
			}
		}
		if len(fins) != 2 || fromServer(fins[0]) == fromServer(fins[1]) {
			return fmt.Errorf("want one FIN from each side in the capture, got %d FINs", len(fins))
		}
		for i, f := range fins {
			other := fins[1-i]
			if f.ack == other.seq+uint32(other.payload)+1 {
				return fmt.Errorf("the FIN from %v acknowledges the other FIN: they did not cross", f.src)
			}
		}
		// Both FINs are on the wire before any ACK of either FIN.
		finEnd := map[netip.AddrPort]uint32{}
		for _, f := range fins {
			finEnd[f.src] = f.seq + uint32(f.payload) + 1
		}
		seen := 0
		for _, s := range segs {
			if s.flags&flagFIN != 0 {
				seen++
			} else if s.flags&flagACK != 0 && s.ack == finEnd[s.dst] && seen < 2 {
				return fmt.Errorf("%v acknowledged the FIN of %v before both FINs were on the wire", s.src, s.dst)
			}
		}
		return nil
	},
	"mid-stream": func(r Result, segs []segment) error {
		if count(segs, func(s segment) bool { return fromServer(s) && s.payload > 0 }) == 0 ||
			count(segs, func(s segment) bool { return !fromServer(s) && s.payload > 0 }) == 0 {
			return errors.New("want data both ways in the capture")
		}
		return nil
	},
	"ipv6": func(r Result, segs []segment) error {
		if n := count(segs, func(s segment) bool { return s.src.Addr().Is4() }); n != 0 {
			return fmt.Errorf("%d IPv4 TCP segments in the capture, want none", n)
		}
		return nil
	},
}

func TestScenarios(t *testing.T) {
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			l := New(t)
			r := sc.Run(l, t)
			t.Logf("%v\n%s", time.Since(start).Round(time.Millisecond), r.Summary())
			if err := r.Check(); err != nil {
				t.Error(err)
			}
			segs, err := readPcap(r.Pcap)
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) == 0 && sc.Name != "mid-stream" {
				t.Error("the capture has no TCP segment")
			}
			syns := count(segs, func(s segment) bool { return s.flags&(flagSYN|flagACK) == flagSYN })
			if syns != r.Want.SYNs {
				t.Errorf("the capture has %d SYNs, want %d", syns, r.Want.SYNs)
			}
			// Every connection the kernel still has must be in the capture.
			seen := map[[2]netip.AddrPort]bool{}
			for _, s := range segs {
				seen[[2]netip.AddrPort{s.src, s.dst}] = true
				seen[[2]netip.AddrPort{s.dst, s.src}] = true
			}
			for _, s := range append(append([]Socket{}, r.Client...), r.Server...) {
				if s.State != tcp.Listen && !seen[[2]netip.AddrPort{s.Local, s.Peer}] {
					t.Errorf("socket %v is not in the capture", s)
				}
			}
			if check := extraChecks[sc.Name]; check != nil {
				if err := check(r, segs); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
