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

// endpoint is the part of Zeek's TCP_Endpoint the model needs (16
// bytes). hist_last_FIN is a bit of cnt when it is last_seq - 1 -
// start_seq (the FIN was the last thing sent, as it usually is), else in
// the rare part; what is rarely other than zero is in the rare part too:
// hist_last_SYN and hist_last_RST, and the retransmission, zero-window
// and bad-checksum counts past a few.
type endpoint struct {
	start seqnum.Value // start_seq
	last  seqnum.Value // last_seq: one past the highest sequence sent
	ack   seqnum.Value // ack_seq: the highest ACK the peer sent for it
	state EndpointState
	prev  EndpointState
	cnt   uint8 // small counts and the FIN bits (cntBits, cntFin, cntFinAt)
	// seen holds the hist_seen bits (histSYN ...) of the role with this
	// endpoint's index, not of the endpoint (roles can flip): ep[0].seen
	// the originator's, ep[1].seen the responder's; the top bit is
	// seenStarted in ep[0], seenFlipped in ep[1].
	seen uint8
}

// counter names one of an endpoint's counted history letters.
type counter uint8

const (
	cntRxmt counter = iota // retransmissions ('T')
	cntWin0                // zero windows ('W')
	cntChk                 // bad checksums ('C')
	numCounters
)

// Rare is the part of a Flow allocated when first needed: history letters
// past the inline ones, a non-zero hist_last_SYN, any hist_last_RST, a
// hist_last_FIN that is not where the endpoint's sequence ends, and the
// counts of the scaled history letters once past what endpoint.cnt holds,
// with the next threshold of each as a power of 10.
type Rare struct {
	more    []byte
	lastSYN [2]int32
	lastRST [2]int32
	lastFIN [2]uint32
	count   [2][numCounters]uint32
	th      [2][numCounters]uint8
}

// The bits of endpoint.cnt: the endpoint's retransmissions (bits 0-2) and
// zero windows (bits 3-5) while fewer than cntInRare, whether it sent a
// FIN, and whether its hist_last_FIN is last_seq - 1 - start_seq.
const (
	cntBits   = 3
	cntInRare = 1<<cntBits - 1 // the count is in the rare part
	cntFin    = 1 << (2 * cntBits)
	cntFinAt  = cntFin << 1
)

// lastFIN is hist_last_FIN of endpoint i.
func (f *flowRef) lastFIN(i uint8) uint32 {
	e := &f.ep[i]
	switch {
	case e.cnt&cntFinAt != 0:
		return uint32(e.last - 1 - e.start)
	case f.x != nil:
		return f.x.lastFIN[i]
	}
	return 0
}

// setLastFIN sets hist_last_FIN of endpoint i to v, as the bit when it is
// where the endpoint's sequence ends.
func (f *flowRef) setLastFIN(i uint8, v uint32) {
	e := &f.ep[i]
	if v == uint32(e.last-1-e.start) {
		e.cnt |= cntFinAt
		return
	}
	e.cnt &^= cntFinAt
	if v != 0 || f.x != nil {
		f.rare().lastFIN[i] = v
	}
}

// keepFIN is called before endpoint i's start_seq or last_seq changes:
// a hist_last_FIN held as the bit moves to the rare part (unless zero).
func (f *flowRef) keepFIN(i uint8) {
	if e := &f.ep[i]; e.cnt&cntFinAt != 0 {
		v := uint32(e.last - 1 - e.start)
		e.cnt &^= cntFinAt
		if v != 0 || f.x != nil {
			f.rare().lastFIN[i] = v
		}
	}
}

// rare returns f's rare part, allocating it.
func (f *flowRef) rare() *Rare {
	if f.x == nil {
		f.x = &Rare{}
	}
	return f.x
}

// lastSYN is hist_last_SYN of endpoint i: zero unless set otherwise.
func (f *flowRef) lastSYN(i uint8) int32 {
	if x := f.x; x != nil {
		return x.lastSYN[i]
	}
	return 0
}

// setLastSYN sets hist_last_SYN of endpoint i, allocating the rare part
// only for a value other than zero.
func (f *flowRef) setLastSYN(i uint8, v int32) {
	if v != 0 || f.x != nil {
		f.rare().lastSYN[i] = v
	}
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
	if e.cnt&cntFin != 0 && n != 0 {
		n--
	}
	return n
}

// Flow is Zeek's view of one TCP connection: its Core and the rare part.
type Flow struct {
	Core
	x *Rare // nil until needed
}

// Core is a Flow less its rare part (40 bytes), for a holder of many
// flows that keeps the rare parts itself (a tracker holds one per
// connection, and one place for all of a connection's rarely used parts):
// see Feed. Endpoint 0 is the first packet's sender; the yes/no facts are
// bits.
type Core struct {
	hist uint64 // the history letters held inline (see addLetter)
	ep   [2]endpoint
}

// Feed is Flow.PacketWithServerPorts for a Core whose rare part, x (nil
// until needed), its holder keeps: it returns the rare part, allocated
// when the packet needed it.
func (c *Core) Feed(p Packet, likely func(port uint16) bool, x *Rare) *Rare {
	r := flowRef{c, x}
	r.feed(&p, likely)
	return r.x
}

// StateWith is Flow.State for a Core whose rare part is x.
func (c *Core) StateWith(x *Rare) string {
	r := flowRef{c, x}
	return r.connState()
}

// HistoryWith is Flow.History for a Core whose rare part is x.
func (c *Core) HistoryWith(x *Rare) string {
	r := flowRef{c, x}
	return r.history()
}

// flowRef is a Core and its rare part, which the model's functions work
// on: a Flow's, or a holder's (Feed).
type flowRef struct {
	*Core
	x *Rare
}

// The top bit of endpoint.seen: in ep[0], a packet was seen; in ep[1],
// the roles are swapped (the originator is endpoint 1).
const (
	seenStarted = 1 << 7
	seenFlipped = 1 << 7
)

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

// The history string is held as its first histInline letters packed in
// Core.hist (bits 0-3 the count, then 5 bits a letter), the rest (rare:
// long runs of scaled letters, or a letter outside histLetters) in the
// rare part: 8 bytes where the letters as bytes would take 24.

// overflowed reports whether letters went past the inline ones.
func (f *flowRef) overflowed() bool { return f.x != nil && len(f.x.more) > 0 }

// addLetter appends c to the history.
func (f *flowRef) addLetter(c byte) {
	n := f.hist & 15
	if code := histCode[c]; code != 0 && n < histInline && !f.overflowed() {
		f.hist += uint64(code)<<(4+5*n) + 1
		return
	}
	x := f.rare()
	x.more = append(x.more, c)
}

// inline decodes the inline letters into buf.
func (f *flowRef) inline(buf *[histInline]byte) []byte {
	n := int(f.hist & 15)
	for i := range n {
		buf[i] = histLetters[(f.hist>>(4+5*i))&31-1]
	}
	return buf[:n]
}

// histSynThenRst is synThenRst of the history, without making its string
// when it is all inline.
func (f *flowRef) histSynThenRst() bool {
	if !f.overflowed() {
		var buf [histInline]byte
		return synThenRst(f.inline(&buf))
	}
	return synThenRst(f.history())
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
func (c *Core) Flipped() bool { return c.ep[1].seen&seenFlipped != 0 }

// History is the history string conn.log would show.
func (f *Flow) History() string {
	r := flowRef{&f.Core, f.x}
	return r.history()
}

// history is Flow.History.
func (f *flowRef) history() string {
	var buf [histInline]byte
	if !f.overflowed() {
		return string(f.inline(&buf))
	}
	return string(f.inline(&buf)) + string(f.x.more)
}

// OrigState and RespState are the endpoint states of Zeek's current
// originator and responder.
func (c *Core) OrigState() EndpointState { return c.ep[c.role(0)].state }

// RespState: see OrigState.
func (c *Core) RespState() EndpointState { return c.ep[c.role(1)].state }

// role returns the index of the originator (r = 0) or the responder (r =
// 1): the roles are swapped when flipped.
func (c *Core) role(r uint8) uint8 {
	if c.Flipped() {
		return r ^ 1
	}
	return r
}

// State is the conn_state Zeek would log if the connection ended now; ""
// before any packet.
func (f *Flow) State() string {
	r := flowRef{&f.Core, f.x}
	return r.connState()
}

// connState is Flow.State.
func (f *flowRef) connState() string {
	if f.ep[0].seen&seenStarted == 0 {
		return ""
	}
	o, r := &f.ep[f.role(0)], &f.ep[f.role(1)]
	c := connView{os: o.state, rs: r.state, origSize: o.size(r), respSize: r.size(o),
		synThenRst: f.histSynThenRst()}
	for _, rule := range connStateRules {
		if rule.test(&c) {
			return rule.state
		}
	}
	return "OTH"
}

// History letters with a "seen once" bit (Zeek's HIST_* masks), in
// endpoint.seen of the role's index.
const (
	histSYN    uint8 = 1 << iota // S / H
	histFIN                      // F
	histRST                      // R
	histACK                      // A
	histData                     // D
	histFinRst                   // I
	histMulti                    // Q
)

func lower(c byte) byte { return c + ('a' - 'A') }

// checkHistory is Connection::CheckHistory through TCP_Endpoint: add the
// letter the first time (upper case for the originator) and report whether
// it had been seen before.
func (f *flowRef) checkHistory(orig bool, mask uint8, code byte) bool {
	seen := &f.ep[0].seen
	if !orig {
		seen = &f.ep[1].seen
		code = lower(code)
	}
	if *seen&mask != 0 {
		return true
	}
	*seen |= mask
	f.addLetter(code)
	return false
}

func (f *flowRef) addHistory(orig bool, code byte) {
	if !orig {
		code = lower(code)
	}
	f.addLetter(code)
}

// pow10 are the thresholds of scaled, by exponent: every power of 10 a
// uint32 holds, then 10^10 wrapped to 32 bits (1410065408), which is what
// multiplying the 32-bit threshold 10^9 by 10 gives; multiplying that one
// again wraps below it, so it is the last.
var pow10 = [...]uint32{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 10_000_000_000 % (1 << 32)}

// scaled is Connection::ScaledHistoryEntry with base 10 for counter k of
// endpoint i: the letter is added when the count reaches 1, 10, 100, ...
// (threshold indexes pow10). Past pow10's last the threshold stays and
// the count restarts. Retransmissions and zero windows are counted in
// f.cnt while below cntInRare (the threshold is then 0 before 1 and 1
// after it), and in the rare part from there.
func (f *flowRef) scaled(orig bool, code byte, i uint8, k counter) {
	if k != cntChk {
		sh := cntBits * uint8(k)
		n := f.ep[i].cnt >> sh & cntInRare
		if n < cntInRare-1 {
			n++
			f.ep[i].cnt += 1 << sh
			if n == 1 {
				f.addHistory(orig, code)
			}
			return
		}
		if n == cntInRare-1 {
			x := f.rare()
			x.count[i][k], x.th[i][k] = uint32(n), 1
			f.ep[i].cnt |= cntInRare << sh
		}
	}
	x := f.rare()
	count, threshold := &x.count[i][k], &x.th[i][k]
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
func (f *flowRef) flip() {
	f.ep[1].seen ^= seenFlipped
	f.addLetter('^')
}

// Packet feeds the next packet in capture order, with
// DefaultLikelyServerPort as Zeek's likely_server_ports.
func (f *Flow) Packet(p Packet) { f.PacketWithServerPorts(p, DefaultLikelyServerPort) }

// PacketWithServerPorts is Packet with the ports for which likely returns
// true as Zeek's likely_server_ports (consulted for the first packet only;
// nil means no port is). The set is not held by the Flow, so that a Flow
// stays small: pass the same one with every packet.
func (f *Flow) PacketWithServerPorts(p Packet, likely func(port uint16) bool) {
	r := flowRef{&f.Core, f.x}
	r.feed(&p, likely)
	f.x = r.x
}

// feed is Flow.PacketWithServerPorts.
func (f *flowRef) feed(p *Packet, likely func(port uint16) bool) {
	if likely == nil {
		likely = noServerPorts
	}
	syn, ack := p.Flags.Has(header.SYN), p.Flags.Has(header.ACK)
	fin, rst := p.Flags.Has(header.FIN), p.Flags.Has(header.RST)
	if f.ep[0].seen&seenStarted == 0 {
		f.ep[0].seen |= seenStarted
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
	orig := (p.Dir == Forward) != f.Flipped()
	var i uint8 // the sender's index: 0 for the first packet's sender
	if p.Dir != Forward {
		i = 1
	}
	if p.BadChecksum {
		f.scaled(orig, 'C', i, cntChk)
		return
	}
	ep, peer := &f.ep[i&1], &f.ep[(i^1)&1] // i is 0 or 1: no bounds checks
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

	f.initEndpoint(i, syn, p.Seq, onePast)
	rel := int64(int32(uint32(p.Seq) - uint32(ep.start)))
	finAt, setFIN := f.updateHistory(orig, i, ep, syn, ack, fin, rst, rel, n)

	// update_window: a zero window is noted unless it comes with or after a
	// RST from this side or after the peer's FIN.
	if p.Window == 0 && !rst && peer.state != Closed && ep.state != Reset {
		f.scaled(orig, 'W', i, cntWin0)
	}
	if fin {
		ep.cnt |= cntFin
	}
	if ack {
		if peer.state == Inactive {
			// init_peer: number the peer as if its SYN had been seen.
			f.keepFIN(i ^ 1)
			peer.start = p.Ack - 1
			peer.ack = p.Ack - 1
			peer.last = p.Ack - 1
		} else if !rst && p.Ack.GreaterThan(peer.ack) &&
			!(p.Ack == 0 && int32(uint32(p.Ack)-uint32(peer.ack)) > tooLargeSeqDelta) {
			peer.ack = p.Ack
		}
	}
	f.updateLastSeq(orig, i, ep, onePast, syn, fin, rst, n, setFIN)
	f.stateMachine(orig, ep, peer, p, syn, ack, fin, rst, n)
	if setFIN {
		// Set last, so that it is held as the bit when the FIN ends
		// the sequence.
		f.setLastFIN(i, finAt)
	}
}

const tooLargeSeqDelta = 1048576

// initEndpoint is TCP.cc init_endpoint for endpoint i.
func (f *flowRef) initEndpoint(i uint8, syn bool, seq, onePast seqnum.Value) {
	ep := &f.ep[i&1]
	if !syn {
		if ep.state == Inactive {
			f.keepFIN(i)
			ep.start, ep.ack = seq-1, seq-1
			ep.last = seq // so the first packet is not taken for a retransmission
		}
		return
	}
	// A SYN reinitialises the endpoint, unless it is a retransmission
	// (the same sequence number) from SYN_SENT or SYN_ACK_SENT, or comes
	// from an endpoint reset after being seen.
	switch ep.state {
	case SynSent, SynAckSent:
		if seq == ep.start {
			return
		}
	case Reset:
		if ep.prev != Inactive {
			return
		}
	case Inactive, Established, Partial:
	default:
		return
	}
	f.keepFIN(i)
	ep.start, ep.ack, ep.last = seq, seq, onePast
}

// updateHistory is TCP.cc update_history.
// It returns the packet's hist_last_FIN, for the caller to set once
// last_seq is updated (setFIN), when the packet sets it.
func (f *flowRef) updateHistory(orig bool, i uint8, ep *endpoint, syn, ack, fin, rst bool, rel int64, n int) (finAt uint32, setFIN bool) {
	bits := b2i(syn) + b2i(fin) + b2i(rst)
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
			if f.checkHistory(orig, histSYN, code) && rel != int64(f.lastSYN(i)) {
				f.addHistory(orig, code)
			}
			f.setLastSYN(i, int32(rel))
		}
		if fin {
			// A FIN's sequence number is after its data.
			// Zeek compares 64 bits; the low 32 differ from them only
			// for two FINs a multiple of 4 GiB apart, which a TCP that
			// sends nothing after its FIN cannot produce.
			if f.checkHistory(orig, histFIN, 'F') && uint32(rel+int64(n)) != f.lastFIN(i) {
				f.addHistory(orig, 'F')
			}
			finAt, setFIN = uint32(rel+int64(n)), true
		}
		if rst {
			// hist_last_RST is in the rare part (RSTs are rarer than
			// SYNs and FINs), zero until the first RST sets it.
			if f.checkHistory(orig, histRST, 'R') && rel != int64(f.rare().lastRST[i]) {
				f.addHistory(orig, 'R')
			}
			f.rare().lastRST[i] = int32(rel)
		}
	default:
		if n > 0 {
			f.checkHistory(orig, histData, 'D')
		} else if ack {
			f.checkHistory(orig, histACK, 'A')
		}
	}
	return finAt, setFIN
}

// updateLastSeq is TCP.cc update_last_seq; a segment that does not advance
// the highest sequence and carries data is a retransmission ('t').
// setFIN is set when the packet sets hist_last_FIN (the caller does,
// after), so that the one held need not be kept.
func (f *flowRef) updateLastSeq(orig bool, i uint8, ep *endpoint, onePast seqnum.Value, syn, fin, rst bool, n int, setFIN bool) {
	delta := int32(uint32(onePast) - uint32(ep.last))
	switch {
	case (syn || rst) && (delta > tooLargeSeqDelta || delta < -tooLargeSeqDelta):
	case fin && ep.last == ep.start+1, ep.state != Reset && delta > 0:
		if setFIN {
			ep.cnt &^= cntFinAt
		} else {
			f.keepFIN(i)
		}
		ep.last = onePast
	case ep.state == Reset:
	case n > 0:
		f.scaled(orig, 'T', i, cntRxmt)
	}
}

// stateMachine is TCP_Analyzer::UpdateStateMachine and the Update*State
// functions it dispatches to.
func (f *flowRef) stateMachine(orig bool, ep, peer *endpoint, p *Packet, syn, ack, fin, rst bool, n int) {
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
			// Nothing above flipped the roles (a flip comes with a SYN,
			// which leaves Inactive): the originator is ep or peer.
			o := peer
			if orig {
				o = ep
			}
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

// b2i is 1 for true and 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
