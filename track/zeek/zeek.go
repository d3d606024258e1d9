// Package zeek models what the Zeek network monitor would log for one TCP
// connection in conn.log: its conn_state (S0, S1, SF, REJ, S2, S3, RSTO,
// RSTR, RSTOS0, RSTRH, SH, SHR, OTH) and its history string.
//
// It is a pure, deterministic value: feed it the packets of one connection in
// capture order and read State and History at any point; State is the
// conn_state Zeek would log if the connection ended there.
//
// Sources (facts only, rewritten):
//   - scripts/base/protocols/conn/main.zeek in zeek/zeek: the meaning of the
//     conn_state codes and history letters, and the conn_state function
//     (see connStateRules in table.go).
//   - src/analyzer/protocol/tcp/TCP.cc (zeek/zeek, the TCP_Analyzer of Zeek
//     3.x/4.x): update_history, init_endpoint, init_peer, update_last_seq,
//     update_window (zero windows), DeliverPacket's order of steps, and the
//     endpoint state machine UpdateInactiveState, UpdateSYN_SentState,
//     UpdateEstablishedState, UpdateClosedState; TCP_Endpoint.cc SetState,
//     Size, CheckHistory/AddHistory (lower case for the responder),
//     DidRxmit/ZeroWindow/ChecksumError; Conn.cc ScaledHistoryEntry (letters
//     recorded at counts 1, 10, 100, ...) and FlipRoles (appends '^');
//     packet_analysis/protocol/tcp/TCP.cc WantConnection (which first packets
//     flip the roles).
//
// Role flipping. Zeek's originator is the sender of the first packet it
// sees, except that a first packet without SYN, or a SYN,ACK, is flipped
// when its source port is a "likely server port" (and, if both ports are,
// only when it is not a SYN,ACK and the source port is the lower). A flip
// adds '^' to the history. Zeek also flips when the originator sent a
// SYN,ACK and a SYN then arrives from the responder whose sequence number the
// SYN,ACK acknowledged (a reordered handshake). Note that Zeek does not flip
// simply because the first packet is a SYN,ACK: with no likely server port
// involved, a SYN,ACK-first connection keeps the SYN,ACK's sender as
// originator (its history starts with 'H').
//
// Not modelled: content gaps ('g', which need Zeek's reassembler), 'x'
// (analysis limits), connection reuse (a new SYN after the connection closed
// makes Zeek start a new conn.log record; here it continues this Flow), and
// the timers after which Zeek expires connections (State always answers as
// if the connection were logged now). Byte sizes (used only by the REJ rule) follow
// TCP_Endpoint::Size with the sequence arithmetic limited to 32 bits.
package zeek

import (
	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// Dir is a packet's direction relative to the first packet the Flow saw.
type Dir uint8

const (
	// Forward is the direction of the first packet given to the Flow.
	Forward Dir = iota
	// Backward is the other direction.
	Backward
)

// Packet is one TCP segment of the connection.
type Packet struct {
	Dir         Dir             // relative to the first packet
	Flags       header.TCPFlags // control bits
	Seq, Ack    seqnum.Value    // sequence and acknowledgment numbers
	Len         int             // payload bytes
	Window      uint16          // raw window field (only zero matters)
	BadChecksum bool            // the TCP checksum is wrong: Zeek records 'c' and drops the packet
	// SrcPort and DstPort are used for the first packet only, for Zeek's
	// likely-server-port heuristic. Zero means unknown (no flip).
	SrcPort, DstPort uint16
}

// endpoint is the part of Zeek's TCP_Endpoint the model needs, kept
// small since a tracker holds two per connection: the thresholds of the
// scaled history letters (1, 10, 100, ...) are held as their exponent,
// and FIN_cnt, whose only use is "a FIN was seen" (TCP_Endpoint::Size),
// saturates at 255.
type endpoint struct {
	start   seqnum.Value // start_seq
	last    seqnum.Value // last_seq: one past the highest sequence sent
	ack     seqnum.Value // ack_seq: the highest ACK the peer sent for it
	lastSYN int32        // hist_last_SYN (a relative sequence number: 32 bits)
	lastRST int32        // hist_last_RST
	lastFIN uint32       // hist_last_FIN, its low 32 bits (see updateHistory)
	rxmt    uint32       // retransmissions
	win0    uint32       // zero windows
	chk     uint32       // bad checksums
	state   EndpointState
	prev    EndpointState
	finCnt  uint8 // FIN_cnt (saturating)
	rxmtTh  uint8 // the next threshold of rxmt, as a power of 10
	win0Th  uint8 // the same for win0
	chkTh   uint8 // the same for chk
}

// setState is TCP_Endpoint::SetState: prev_state changes only on a change.
func (e *endpoint) setState(s EndpointState) {
	if s != e.state {
		e.prev = e.state
		e.state = s
	}
}

// size is TCP_Endpoint::Size: payload bytes by sequence numbers.
func (e *endpoint) size(peer *endpoint) uint64 {
	if e.prev == SynSent && e.state == Reset && peer.state == Inactive {
		return 0
	}
	top := e.last
	if e.ack.GreaterThan(top) {
		top = e.ack
	}
	d := int64(int32(uint32(top) - uint32(e.start)))
	if d <= 0 {
		return 0
	}
	n := uint64(d) - 1 // the SYN's octet
	if e.finCnt > 0 && n != 0 {
		n--
	}
	return n
}

// Flow is Zeek's view of one TCP connection.
type Flow struct {
	ep      [2]endpoint // the endpoints, held by value so a Flow is one allocation
	hist    history
	seen    uint32 // hist_seen: one bit per (letter, role)
	orig    uint8  // index in ep of Zeek's current originator (the other is the responder)
	started bool
	flipped bool
}

// histInline is how many history letters a Flow holds without allocating:
// a complete connection's history ("ShADadFf", with a few 't' or '^') fits.
const histInline = 12

// histLetters is the alphabet of history letters held inline, 5 bits each;
// a letter's code is its index plus one (0 is unused). Zeek's letters are
// these, upper case for the originator and lower case for the responder,
// and '^' for a flip (Zeek's base/protocols/conn/main.zeek documents them).
const histLetters = "SHADFRCGIQTWshadfrcgiqtw^"

// histCode maps a byte to its 5-bit code, 0 when it is not in histLetters.
var histCode = func() (t [256]uint8) {
	for i := range len(histLetters) {
		t[histLetters[i]] = uint8(i + 1)
	}
	return t
}()

// history is a history string: its first histInline letters packed inline
// (bits 0-3 the count, then 5 bits a letter), the rest (rare: long runs of
// scaled letters, or a letter outside histLetters) in an allocation. It is
// 16 bytes where the letters as bytes would take 24.
type history struct {
	more   *[]byte
	packed uint64
}

func (h *history) add(c byte) {
	n := h.packed & 15
	if code := histCode[c]; code != 0 && n < histInline && h.more == nil {
		h.packed += uint64(code)<<(4+5*n) + 1
		return
	}
	if h.more == nil {
		h.more = new([]byte)
	}
	*h.more = append(*h.more, c)
}

// inline decodes the inline letters into buf.
func (h *history) inline(buf *[histInline]byte) []byte {
	n := int(h.packed & 15)
	for i := range n {
		buf[i] = histLetters[(h.packed>>(4+5*i))&31-1]
	}
	return buf[:n]
}

// synThenRst is synThenRst of the history, without making its string
// when it is all inline.
func (h *history) synThenRst() bool {
	if h.more == nil {
		var buf [histInline]byte
		return synThenRst(h.inline(&buf))
	}
	return synThenRst(h.String())
}

func (h *history) String() string {
	var buf [histInline]byte
	if h.more == nil {
		return string(h.inline(&buf))
	}
	return string(h.inline(&buf)) + string(*h.more)
}

// New returns an empty Flow. Its role heuristic uses
// DefaultLikelyServerPort unless it is fed with PacketWithServerPorts.
func New() *Flow { return &Flow{} }

// DefaultLikelyServerPort reports whether port is in the part of Zeek's
// default likely_server_ports this package knows: the TCP ports that the
// default-loaded HTTP (80, 81, 631, 1080, 3128, 8000, 8080, 8888), SSL (443,
// 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223), SSH (22), SMTP (25,
// 587), DCE-RPC (135) and XMPP (5222, 5269) scripts add. Zeek's real set
// is larger (every analyzer script adds its ports); pass your own set to
// Flow.PacketWithServerPorts to match a particular installation.
func DefaultLikelyServerPort(port uint16) bool {
	switch port {
	case 22, 25, 80, 81, 135, 443, 563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 995,
		1080, 3128, 5222, 5223, 5269, 8000, 8080, 8888:
		return true
	}
	return false
}

// noServerPorts is the empty set of likely server ports.
func noServerPorts(uint16) bool { return false }

// Flipped reports whether Zeek has swapped the roles, so that its
// originator is the receiver of the first packet.
func (f *Flow) Flipped() bool { return f.flipped }

// History is the history string conn.log would show.
func (f *Flow) History() string { return f.hist.String() }

// OrigState and RespState are the endpoint states of Zeek's current
// originator and responder.
func (f *Flow) OrigState() EndpointState { return f.role(0).state }

// RespState: see OrigState.
func (f *Flow) RespState() EndpointState { return f.role(1).state }

// role returns the originator (r = 0) or the responder (r = 1).
func (f *Flow) role(r uint8) *endpoint { return &f.ep[f.orig^r] }

// State is the conn_state Zeek would log if the connection ended now; ""
// before any packet.
func (f *Flow) State() string {
	if !f.started {
		return ""
	}
	o, r := f.role(0), f.role(1)
	c := connView{os: o.state, rs: r.state, origSize: o.size(r), respSize: r.size(o),
		synThenRst: f.hist.synThenRst()}
	for _, rule := range connStateRules {
		if rule.test(&c) {
			return rule.state
		}
	}
	return "OTH"
}

// History letters with a "seen once" bit (Zeek's HIST_* masks); the
// responder's bits are these shifted left by 16.
const (
	histSYN    uint32 = 1 << iota // S / H
	histFIN                       // F
	histRST                       // R
	histACK                       // A
	histData                      // D
	histFinRst                    // I
	histMulti                     // Q
)

func lower(c byte) byte { return c + ('a' - 'A') }

// checkHistory is Connection::CheckHistory through TCP_Endpoint: add the
// letter the first time (upper case for the originator) and report whether
// it had been seen before.
func (f *Flow) checkHistory(orig bool, mask uint32, code byte) bool {
	if !orig {
		mask <<= 16
		code = lower(code)
	}
	if f.seen&mask != 0 {
		return true
	}
	f.seen |= mask
	f.hist.add(code)
	return false
}

func (f *Flow) addHistory(orig bool, code byte) {
	if !orig {
		code = lower(code)
	}
	f.hist.add(code)
}

// pow10 are the thresholds of scaled, by exponent: every power of 10 a
// uint32 holds, then 10^10 wrapped to 32 bits (1410065408), which is what
// multiplying the 32-bit threshold 10^9 by 10 gives; multiplying that one
// again wraps below it, so it is the last.
var pow10 = [...]uint32{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 10_000_000_000 % (1 << 32)}

// scaled is Connection::ScaledHistoryEntry with base 10: the letter is added
// when the count reaches 1, 10, 100, ... (threshold indexes pow10). Past
// pow10's last the threshold stays and the count restarts.
func (f *Flow) scaled(orig bool, code byte, count *uint32, threshold *uint8) {
	*count++
	if *count != pow10[*threshold] {
		return
	}
	f.addHistory(orig, code)
	if int(*threshold)+1 < len(pow10) {
		*threshold++
	} else {
		*count = 0 // wrapped: keep the threshold, restart the count
	}
}

// flip is FlipRoles: swap originator and responder, note '^'.
func (f *Flow) flip() {
	f.flipped = !f.flipped
	f.orig ^= 1
	f.hist.add('^')
}

// Packet feeds the next packet in capture order, with
// DefaultLikelyServerPort as Zeek's likely_server_ports.
func (f *Flow) Packet(p Packet) { f.PacketWithServerPorts(p, DefaultLikelyServerPort) }

// PacketWithServerPorts is Packet with the ports for which likely returns
// true as Zeek's likely_server_ports (consulted for the first packet only;
// nil means no port is). The set is not held by the Flow, so that a Flow
// stays small: pass the same one with every packet.
func (f *Flow) PacketWithServerPorts(p Packet, likely func(port uint16) bool) {
	if likely == nil {
		likely = noServerPorts
	}
	syn, ack := p.Flags.Has(header.SYN), p.Flags.Has(header.ACK)
	fin, rst := p.Flags.Has(header.FIN), p.Flags.Has(header.RST)
	if !f.started {
		f.started = true
		// WantConnection: a partial start may be flipped by port.
		if (!syn || ack) && p.SrcPort != 0 && likely(p.SrcPort) {
			if likely(p.DstPort) {
				if !syn && p.SrcPort < p.DstPort {
					f.flip()
				}
			} else {
				f.flip()
			}
		}
	}
	orig := (p.Dir == Forward) != f.flipped
	ep, peer := f.role(1), f.role(0)
	if orig {
		ep, peer = f.role(0), f.role(1)
	}
	if p.BadChecksum {
		f.scaled(orig, 'C', &ep.chk, &ep.chkTh)
		return
	}
	n := p.Len
	if n < 0 {
		n = 0
	}
	segLen := n
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	if rst {
		segLen -= n
	}
	onePast := p.Seq.Add(seqnum.Size(segLen))

	initEndpoint(ep, syn, p.Seq, onePast)
	rel := int64(int32(uint32(p.Seq) - uint32(ep.start)))
	f.updateHistory(orig, ep, syn, ack, fin, rst, rel, n)

	// update_window: a zero window is noted unless it comes with or after a
	// RST from this side or after the peer's FIN.
	if p.Window == 0 && !rst && peer.state != Closed && ep.state != Reset {
		f.scaled(orig, 'W', &ep.win0, &ep.win0Th)
	}
	if fin {
		if ep.finCnt < ^uint8(0) {
			ep.finCnt++
		}
	}
	if ack {
		if peer.state == Inactive {
			// init_peer: number the peer as if its SYN had been seen.
			peer.start = p.Ack - 1
			peer.ack = p.Ack - 1
			peer.last = p.Ack - 1
		} else if !rst && p.Ack.GreaterThan(peer.ack) &&
			!(p.Ack == 0 && int32(uint32(p.Ack)-uint32(peer.ack)) > tooLargeSeqDelta) {
			peer.ack = p.Ack
		}
	}
	f.updateLastSeq(orig, ep, onePast, syn, fin, rst, n)
	f.stateMachine(orig, ep, peer, p, syn, ack, fin, rst, n)
}

const tooLargeSeqDelta = 1048576

// initEndpoint is TCP.cc init_endpoint.
func initEndpoint(ep *endpoint, syn bool, seq, onePast seqnum.Value) {
	reinit := func() { ep.start, ep.ack, ep.last = seq, seq, onePast }
	switch ep.state {
	case Inactive:
		if syn {
			reinit()
		} else {
			ep.start, ep.ack = seq-1, seq-1
			ep.last = seq // so the first packet is not taken for a retransmission
		}
	case SynSent, SynAckSent:
		if syn && seq != ep.start {
			reinit()
		}
	case Established, Partial:
		if syn {
			reinit()
		}
	case Reset:
		if syn && ep.prev == Inactive {
			reinit()
		}
	}
}

// updateHistory is TCP.cc update_history.
func (f *Flow) updateHistory(orig bool, ep *endpoint, syn, ack, fin, rst bool, rel int64, n int) {
	bits := 0
	for _, b := range []bool{syn, fin, rst} {
		if b {
			bits++
		}
	}
	switch {
	case bits > 1:
		if fin && rst {
			f.checkHistory(orig, histFinRst, 'I')
		} else {
			f.checkHistory(orig, histMulti, 'Q')
		}
	case bits == 1:
		if syn {
			code := byte('S')
			if ack {
				code = 'H'
			}
			if f.checkHistory(orig, histSYN, code) && rel != int64(ep.lastSYN) {
				f.addHistory(orig, code)
			}
			ep.lastSYN = int32(rel)
		}
		if fin {
			// A FIN's sequence number is after its data.
			// Zeek compares 64 bits; the low 32 differ from them only
			// for two FINs a multiple of 4 GiB apart, which a TCP that
			// sends nothing after its FIN cannot produce.
			if f.checkHistory(orig, histFIN, 'F') && uint32(rel+int64(n)) != ep.lastFIN {
				f.addHistory(orig, 'F')
			}
			ep.lastFIN = uint32(rel + int64(n))
		}
		if rst {
			if f.checkHistory(orig, histRST, 'R') && rel != int64(ep.lastRST) {
				f.addHistory(orig, 'R')
			}
			ep.lastRST = int32(rel)
		}
	default:
		if n > 0 {
			f.checkHistory(orig, histData, 'D')
		} else if ack {
			f.checkHistory(orig, histACK, 'A')
		}
	}
}

// updateLastSeq is TCP.cc update_last_seq; a segment that does not advance
// the highest sequence and carries data is a retransmission ('t').
func (f *Flow) updateLastSeq(orig bool, ep *endpoint, onePast seqnum.Value, syn, fin, rst bool, n int) {
	delta := int32(uint32(onePast) - uint32(ep.last))
	switch {
	case (syn || rst) && (delta > tooLargeSeqDelta || delta < -tooLargeSeqDelta):
	case fin && ep.last == ep.start+1:
		ep.last = onePast
	case ep.state == Reset:
	case delta > 0:
		ep.last = onePast
	case n > 0:
		f.scaled(orig, 'T', &ep.rxmt, &ep.rxmtTh)
	}
}

// stateMachine is TCP_Analyzer::UpdateStateMachine and the Update*State
// functions it dispatches to.
func (f *Flow) stateMachine(orig bool, ep, peer *endpoint, p Packet, syn, ack, fin, rst bool, n int) {
	switch ep.state {
	case Inactive:
		if syn {
			if orig {
				if ack {
					ep.setState(SynAckSent)
				} else {
					ep.setState(SynSent)
				}
			} else {
				if !ack && peer.state == SynAckSent && p.Seq == ep.start {
					// The SYN,ACK came first and this is the SYN it answered:
					// swap the roles and take the connection as established.
					f.flip()
					peer.setState(Established)
				}
				if peer.state == SynSent {
					peer.setState(Established)
				}
				ep.setState(Established)
			}
		}
		if fin {
			ep.setState(Closed)
		}
		if rst {
			ep.setState(Reset)
		}
		if ep.state == Inactive {
			o := f.role(0)
			switch {
			case !orig && n == 0 && o.state == SynSent:
				// An ACK for the SYN before the SYN,ACK: not a partial start.
			case ack && peer.state == Established:
				ep.setState(Established)
			default:
				ep.setState(Partial)
			}
		}
	case SynSent, SynAckSent:
		if fin {
			ep.setState(Closed)
		}
		if rst {
			ep.setState(Reset)
		}
	case Established, Partial:
		if syn && ep.state == Partial && peer.state == Inactive && !ack {
			ep.setState(SynSent)
		}
		if fin && !rst {
			ep.setState(Closed)
			if peer.state == Reset && peer.prev == Closed {
				peer.setState(Closed) // the peer's RST followed its FIN: a normal end
			}
		}
		if rst {
			ep.setState(Reset)
		}
	case Closed:
		if rst && peer.state != Closed {
			ep.setState(Reset)
		}
	case Reset:
	}
}
