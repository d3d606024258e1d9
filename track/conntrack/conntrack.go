// Package conntrack models what Linux netfilter connection tracking
// (nf_conntrack, net/netfilter/nf_conntrack_proto_tcp.c) would hold for one
// TCP connection: the state `conntrack -L` prints, the seconds left on the
// entry's timer, and the [ASSURED] and [UNREPLIED] flags.
//
// It is a pure, deterministic value: feed it the packets a middlebox would
// see, one at a time with their timestamps, and ask At(t) at any instant.
// It never reads a clock.
//
// What is modelled, each rule citing its kernel function:
//   - entry creation (tcp_new, tcp_error's valid-flag table);
//   - the state table (tcp_conntracks) and the special cases of
//     nf_conntrack_tcp_packet: "ignore" packets, reopening from TIME_WAIT /
//     CLOSE, simultaneous open, the RFC 5961 challenge-ACK in LAST_ACK, the
//     RST acceptance rules, the SYN,ACK that resynchronises after an
//     ignored SYN;
//   - the timeout choice (retransmission cap, RST, unacknowledged data,
//     zero window) and the [UNREPLIED]/[ASSURED] handling, including the
//     immediate deletion on a RST before any reply and the rule that a
//     retransmitted SYN does not refresh the timer.
//
// What is simplified (tcp_in_window): the sequence-window checks that make
// the kernel mark out-of-window packets INVALID are not done; every packet
// the state table accepts is taken as in-window. Per direction the model
// keeps what the timeouts need: the highest sequence end sent (td_end), the
// highest ACK sent (td_maxack), and whether sent data is unacknowledged
// (IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED, cleared when the peer's ACK reaches
// td_end; the kernel clears it on an exact match and would call a larger
// ACK invalid, the model clears it on any ACK at or beyond td_end). Window
// scaling and SACK therefore do not matter and are not taken. Retransmissions
// are counted as the kernel counts them: an ACK-class packet identical to the
// previous one (same direction, seq, ack, end and raw window).
// nf_tcp_handle_invalid (shortening the timeout after out-of-window FIN/RST)
// is not modelled because out-of-window packets are not detected.
package conntrack

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// Dir is a packet's direction relative to the entry.
type Dir uint8

const (
	// Original is the direction of the first packet given to New.
	Original Dir = iota
	// Reply is the other direction.
	Reply
)

// Packet is one TCP segment as the middlebox sees it.
type Packet struct {
	T      time.Time       // when it passed
	Dir    Dir             // relative to the first packet given to New
	Flags  header.TCPFlags // control bits
	Seq    seqnum.Value    // sequence number
	Ack    seqnum.Value    // acknowledgment number (meaningful with ACK)
	Len    int             // payload bytes
	Window uint16          // the raw (unscaled) window field
}

// Outcome says what the tracker did with the last packet given to New or
// Update.
type Outcome uint8

const (
	// Tracked: the packet was accepted; state and timer updated.
	Tracked Outcome = iota
	// Ignored: the table says "ignore" (sIG) or the kernel accepts the
	// packet without touching the state (e.g. a challenge ACK); the state
	// and timer are unchanged.
	Ignored
	// Invalid: the table says "invalid" (sIV) or the RST checks reject it;
	// nothing changes (an iptables rule matching INVALID would see it).
	Invalid
	// Untracked: tcp_error rejected the packet (an invalid flag
	// combination such as a bare FIN, SYN+FIN or no flags); nothing changes.
	Untracked
	// Created: the packet created a new entry (New, or Update after the old
	// entry expired, was deleted, or was replaced by a reopening SYN).
	Created
	// Refused: no entry exists and this packet does not create one.
	Refused
	// Deleted: the packet deleted the entry (a RST before any reply).
	Deleted
)

var outcomeNames = [...]string{"tracked", "ignored", "invalid", "untracked", "created", "refused", "deleted"}

// String names the outcome.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "?"
}

// side is the sequence state the model keeps per direction (the
// kernel's struct ip_ct_tcp_state, reduced); its yes/no facts are bits of
// Entry.sideBits (sideFlag).
type side struct {
	end    seqnum.Value // td_end: highest seq+len (+SYN, +FIN) sent
	maxack seqnum.Value // td_maxack: highest ACK sent
}

// sideFlag is one of a direction's yes/no facts; direction d's are bits
// 4d to 4d+3 of Entry.sideBits.
type sideFlag uint8

const (
	sideSeen      sideFlag = 1 << iota // td_maxwin != 0: this direction has been initialised
	sideMaxackSet                      // IP_CT_TCP_FLAG_MAXACK_SET
	sideUnacked                        // IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED
	sideCloseInit                      // IP_CT_TCP_FLAG_CLOSE_INIT: this side sent the first FIN
)

// entryFlag is one of an entry's yes/no facts, bits of Entry.flags.
type entryFlag uint8

const (
	efSimOpen   entryFlag = 1 << iota // IP_CT_TCP_SIMULTANEOUS_OPEN in last_flags
	efChallenge                       // IP_CT_EXP_CHALLENGE_ACK in last_flags
	efAlive                           // the kernel holds the entry
	efRev                             // the entry's ORIGINAL is the caller's Reply direction
	efAssured                         // IPS_ASSURED_BIT
	efReplied                         // IPS_SEEN_REPLY_BIT
	efLastReply                       // last_dir is Reply
)

// Entry is one conntrack entry for a TCP connection.
//
// An Entry is kept small (48 bytes), as a tracker holds one per
// connection: the settings are a 16-bit index into a registry of shared
// settings, the deadline is in Unix nanoseconds, the yes/no facts are
// bits (sideFlag, entryFlag), the last packet's class and the last
// outcome share a byte, and the fields are ordered so that no padding is
// needed.
type Entry struct {
	deadline int64 // Unix nanoseconds

	sides [2]side

	// The kernel's struct ip_ct_tcp "last packet" fields (last_dir is
	// efLastReply, last_index the low half of lastIO).
	lastSeq seqnum.Value
	lastAck seqnum.Value
	lastEnd seqnum.Value
	retrans int32
	lastWin uint16

	cfg      uint16 // index of the settings in the registry (settings.go)
	sideBits uint8  // sideFlag bits of both directions
	flags    entryFlag
	state    State
	lastIO   uint8 // last_index (class) in the low 4 bits, the last Outcome in the high 4
}

// is reports whether fact f holds.
func (e *Entry) is(f entryFlag) bool { return e.flags&f != 0 }

// mark sets fact f to v.
func (e *Entry) mark(f entryFlag, v bool) {
	if v {
		e.flags |= f
	} else {
		e.flags &^= f
	}
}

// sideIs reports whether fact f holds for direction d.
func (e *Entry) sideIs(d Dir, f sideFlag) bool { return e.sideBits>>(4*d)&uint8(f) != 0 }

// markSide sets fact f of direction d to v.
func (e *Entry) markSide(d Dir, f sideFlag, v bool) {
	b := uint8(f) << (4 * d)
	if v {
		e.sideBits |= b
	} else {
		e.sideBits &^= b
	}
}

// resetSide makes direction d's state fresh: seen up to end when seen is
// set, else unseen and zero.
func (e *Entry) resetSide(d Dir, seen bool, end seqnum.Value) {
	e.sides[d] = side{end: end}
	e.sideBits &^= 0xf << (4 * d)
	e.markSide(d, sideSeen, seen)
}

// lastDir is the kernel's last_dir.
func (e *Entry) lastDir() Dir {
	if e.is(efLastReply) {
		return Reply
	}
	return Original
}

// lastIndex is the kernel's last_index.
func (e *Entry) lastIndex() class { return class(e.lastIO & 0xf) }

// setLast sets last_dir and last_index.
func (e *Entry) setLast(d Dir, idx class) {
	e.mark(efLastReply, d == Reply)
	e.lastIO = e.lastIO&0xf0 | uint8(idx)&0xf
}

// setOutcome records what happened to the last packet.
func (e *Entry) setOutcome(o Outcome) { e.lastIO = e.lastIO&0x0f | uint8(o)<<4 }

// New creates the entry the kernel would create for first, with the
// kernel's default settings. It returns false when conntrack would create no
// entry for this packet (see NewWithConfig).
func New(first Packet) (*Entry, bool) {
	return NewWithConfig(first, Defaults())
}

// NewWithConfig is New with the given settings. Following tcp_error and
// tcp_new: a packet with an invalid flag combination creates nothing; a SYN
// (without ACK) creates a SYN_SENT entry; an ACK-class packet (ACK, ACK
// with data, ACK+PSH) creates an ESTABLISHED entry when cfg.Loose is set
// (picked up mid-stream); SYN+ACK, FIN+ACK and RST create nothing. The
// packet's Dir is ignored: the first packet defines Original.
func NewWithConfig(first Packet, cfg Config) (*Entry, bool) {
	e, ok := MakeWithConfig(first, cfg)
	if !ok {
		return nil, false
	}
	return &e, true
}

// Make is New returning the entry as a value, for a holder that embeds it
// (a tracker keeps one per connection): it allocates nothing.
func Make(first Packet) (Entry, bool) { return makeEntry(first, 0) }

// MakeWithConfig is NewWithConfig returning the entry as a value.
// It returns false as well when the process has already registered 65536
// distinct settings (settings.go), which no real program does.
func MakeWithConfig(first Packet, cfg Config) (Entry, bool) {
	i, ok := shared(cfg)
	if !ok {
		return Entry{}, false
	}
	return makeEntry(first, i)
}

// makeEntry is MakeWithConfig with the settings already registered as
// index cfg: it allocates nothing.
func makeEntry(first Packet, cfg uint16) (Entry, bool) {
	e := Entry{cfg: cfg}
	first.Dir = Original
	if !e.create(first) {
		return Entry{}, false
	}
	return e, true
}

// Update feeds the next packet. Directions stay relative to the first packet
// given to New, even if the kernel's entry is later replaced by one whose
// original direction is the other (see Reversed).
//
// If the entry has expired (p.T is at or after its deadline) or has been
// deleted, the kernel would no longer find it: the packet is treated as the
// first packet of a new entry, exactly as New treats it, and LastOutcome
// reports Created or Refused.
func (e *Entry) Update(p Packet) {
	if !e.is(efAlive) || p.T.UnixNano() >= e.deadline {
		e.recreate(p)
		return
	}
	e.packet(&p)
}

// At reports the entry at instant t: the state name as `conntrack -L` prints
// it, the time left on its timer, and whether it exists. An entry is gone at
// its deadline (nf_ct_is_expired counts an entry whose timeout equals now as
// expired) and after a deletion; then At returns "", 0, false.
func (e *Entry) At(t time.Time) (state string, expire time.Duration, alive bool) {
	now := t.UnixNano()
	if !e.is(efAlive) || now >= e.deadline {
		return "", 0, false
	}
	return e.state.String(), time.Duration(e.deadline - now), true
}

// State is the entry's current state, whatever the time.
func (e *Entry) State() State { return e.state }

// Assured reports the [ASSURED] flag: set when traffic has been seen both
// ways and the connection reached ESTABLISHED (nf_conntrack_tcp_packet).
func (e *Entry) Assured() bool { return e.is(efAlive) && e.is(efAssured) }

// Unreplied reports the [UNREPLIED] flag: no packet in the reply direction
// has been accepted yet.
func (e *Entry) Unreplied() bool { return e.is(efAlive) && !e.is(efReplied) }

// Reversed reports whether the current entry's original direction is the
// caller's Reply direction. That happens when an entry is replaced by one
// created from a Reply-direction packet (a reopening SYN, or a new entry
// after expiry).
func (e *Entry) Reversed() bool { return e.is(efRev) }

// LastOutcome says what happened to the last packet.
func (e *Entry) LastOutcome() Outcome { return Outcome(e.lastIO >> 4) }

// Retrans is the kernel's retransmission counter: how many identical
// ACK-class packets in a row were seen.
func (e *Entry) Retrans() int { return int(e.retrans) }

// recreate handles a packet when the kernel has no entry: it may create one.
func (e *Entry) recreate(p Packet) {
	rev := p.Dir != Original
	fresh := Entry{cfg: e.cfg}
	p.Dir = Original
	if !fresh.create(p) {
		e.mark(efAlive, false)
		e.setOutcome(Refused)
		return
	}
	fresh.mark(efRev, rev)
	*e = fresh
}

// validFlags is tcp_error's tcp_valid_flags table: the combinations of
// FIN, SYN, RST, ACK and URG conntrack tracks at all (PSH, ECE and CWR are
// ignored). Anything else is counted invalid and never reaches the state
// machine.
func validFlags(f header.TCPFlags) bool {
	switch f &^ (header.PSH | header.ECE | header.CWR) {
	case header.SYN, header.SYN | header.URG, header.SYN | header.ACK,
		header.RST, header.RST | header.ACK,
		header.FIN | header.ACK, header.FIN | header.ACK | header.URG,
		header.ACK, header.ACK | header.URG:
		return true
	}
	return false
}

// classify is get_conntrack_index.
func classify(f header.TCPFlags) class {
	switch {
	case f.Has(header.RST):
		return clsRst
	case f.Has(header.SYN):
		if f.Has(header.ACK) {
			return clsSynAck
		}
		return clsSyn
	case f.Has(header.FIN):
		return clsFin
	case f.Has(header.ACK):
		return clsAck
	}
	return clsNone
}

// segEnd is segment_seq_plus_len: seq + payload + 1 for SYN + 1 for FIN.
func segEnd(p *Packet) seqnum.Value {
	n := p.Len
	if n < 0 {
		n = 0
	}
	end := p.Seq.Add(seqnum.Size(n))
	if p.Flags.Has(header.SYN) {
		end++
	}
	if p.Flags.Has(header.FIN) {
		end++
	}
	return end
}

// create runs tcp_error and tcp_new for the first packet of an entry (Dir
// already Original), then processes it as nf_conntrack_tcp_packet does.
func (e *Entry) create(p Packet) bool {
	if !validFlags(p.Flags) {
		e.setOutcome(Refused)
		return false
	}
	idx := classify(p.Flags)
	next := transitions[Original][None][idx]
	switch {
	case next == SynSent:
		// tcp_new: a SYN initialises the original side.
		e.resetSide(Original, true, segEnd(&p))
	case next == Established && e.conf().Loose:
		// tcp_new with tcp_loose: picked up mid-stream; the kernel also
		// marks both sides "be liberal", which only matters for the window
		// checks this model does not make.
		e.resetSide(Original, true, segEnd(&p))
	default:
		e.setOutcome(Refused)
		return false
	}
	e.mark(efAlive, true)
	e.state = None
	e.setLast(e.lastDir(), clsNone)
	e.packet(&p)
	if e.LastOutcome() == Tracked {
		e.setOutcome(Created)
	}
	return e.is(efAlive)
}

// action is how nf_conntrack_tcp_packet's special cases continue.
type action uint8

const (
	doWindow   action = iota // run tcp_in_window, then commit
	skipWindow               // "goto in_window": commit without the window step
	stop                     // the packet has been dealt with (ignored/invalid/...)
)

// packet is nf_conntrack_tcp_packet for an existing entry, with dir relative
// to the current entry's original direction after applying rev.
func (e *Entry) packet(p *Packet) {
	dir := Original
	if p.Dir != Original {
		dir = Reply
	}
	if e.is(efRev) {
		dir ^= 1
	}
	if !validFlags(p.Flags) {
		e.setOutcome(Untracked)
		return
	}
	idx := classify(p.Flags)
	old := e.state
	next := transitions[dir][old][idx]
	act := doWindow

	switch next {
	case SynSent:
		if old < TimeWait {
			break
		}
		// RFC 1122 reopening from TIME_WAIT/CLOSE: if the old connection was
		// closed (a FIN was seen) or this side reset it, the kernel deletes
		// the entry and processes the SYN as the first packet of a new one.
		if e.sideIs(0, sideCloseInit) || e.sideIs(1, sideCloseInit) ||
			(e.lastDir() == dir && e.lastIndex() == clsRst) {
			e.recreate(*p)
			return
		}
		// Otherwise it is treated like an ignored packet.
		act = e.ignore(p, dir, idx, old)
		if act == stop {
			return
		}
		old, next = SynSent, SynRecv // only reachable via the resync path
	case ign:
		act = e.ignore(p, dir, idx, old)
		if act == stop {
			return
		}
		old, next = SynSent, SynRecv
	case inv:
		e.setOutcome(Invalid)
		return
	case TimeWait:
		// RFC 5961 challenge ACK answering an ignored SYN in LAST_ACK must
		// not be taken for the last ACK.
		if old == LastAck && idx == clsAck && e.lastDir() != dir &&
			e.lastIndex() == clsSyn && e.is(efChallenge) {
			e.mark(efChallenge, false)
			e.acceptUnchanged(dir)
			return
		}
	case SynSent2:
		e.mark(efSimOpen, true)
	case SynRecv:
		if dir == Reply && idx == clsAck && e.is(efSimOpen) {
			next = Established
		}
	case Close:
		if idx == clsRst {
			next, act = e.rstChecks(p, dir, old, next)
			if act == stop {
				return
			}
		}
	}

	if act == doWindow {
		e.window(p, dir, idx, old)
	}
	e.commit(p, dir, idx, old, next)
}

// ignore is the TCP_CONNTRACK_IGNORE branch. It returns doWindow when the
// packet is a SYN,ACK answering a SYN the tracker had ignored (the caller
// then moves SYN_SENT -> SYN_RECV), and stop otherwise.
func (e *Entry) ignore(p *Packet, dir Dir, idx class, old State) action {
	if idx == clsSynAck && e.lastIndex() == clsSyn && e.lastDir() != dir && p.Ack == e.lastEnd {
		// The endpoints are in sync and the tracker is not: take the
		// annotated SYN as the opening of a new handshake.
		e.resetSide(e.lastDir(), true, e.lastEnd)
		e.resetSide(dir, false, 0)
		e.mark(efChallenge, false)
		return doWindow
	}
	e.setLast(dir, idx)
	e.lastSeq = p.Seq
	e.lastEnd = segEnd(p)
	e.lastWin = p.Window
	if idx == clsSyn && dir == Original {
		// last_flags is reset to the SYN's options; the model keeps only
		// the two flags it uses.
		e.mark(efSimOpen, false)
		e.mark(efChallenge, old == LastAck)
	}
	if old == SynSent && idx == clsAck && dir == Reply {
		e.lastAck = p.Ack // possible challenge ACK answering the SYN
	}
	e.acceptUnchanged(dir)
	return stop
}

// acceptUnchanged records a packet the kernel lets through (NF_ACCEPT)
// without touching state or timer; the core still marks the entry replied.
func (e *Entry) acceptUnchanged(dir Dir) {
	if dir == Reply {
		e.mark(efReplied, true)
	}
	e.setOutcome(Ignored)
}

// canEarlyDrop is tcp_can_early_drop.
func canEarlyDrop(s State) bool {
	switch s {
	case FinWait, LastAck, TimeWait, Close, CloseWait:
		return true
	}
	return false
}

// rstChecks is the TCP_CONNTRACK_CLOSE case for a RST.
func (e *Entry) rstChecks(p *Packet, dir Dir, old, next State) (State, action) {
	if canEarlyDrop(old) {
		return next, skipWindow
	}
	peer := &e.sides[dir^1]
	established := old == Established && e.is(efAssured)
	if e.sideIs(dir^1, sideMaxackSet) && e.lastIndex() != clsSyn {
		seq := p.Seq
		switch {
		case seq == 0 && !established:
			return next, doWindow
		case seq.LessThan(peer.maxack):
			e.setOutcome(Invalid) // "invalid rst" (nf_conntrack_tcp_ignore_invalid_rst = 0)
			return next, stop
		case !established || seq == peer.maxack:
			return next, doWindow
		case e.lastIndex() == clsAck && e.lastDir() == dir && seq == e.lastEnd:
			return next, doWindow // the RST ends a train of data
		}
		// The RST's sequence number is not exact: keep the state so that
		// a challenge ACK can follow (the timeout still drops to CLOSE's).
		next = old
	}
	if ((e.is(efReplied) && e.lastIndex() == clsSyn) || (!e.is(efAssured) && e.lastIndex() == clsAck)) &&
		p.Ack == e.lastEnd {
		return next, skipWindow // RST answering a SYN/ACK we let through
	}
	if old == SynSent && e.lastIndex() == clsAck && e.lastDir() == Reply && p.Seq == e.lastAck {
		return next, skipWindow // RST answering a challenge ACK
	}
	return next, doWindow
}

// window is the part of tcp_in_window the model keeps (see the package
// comment).
func (e *Entry) window(p *Packet, dir Dir, idx class, old State) {
	snd, rcv := &e.sides[dir], &e.sides[dir^1]
	seq, ack, end := p.Seq, p.Ack, segEnd(p)
	hasAck := p.Flags.Has(header.ACK)
	if !e.sideIs(dir, sideSeen) {
		e.markSide(dir, sideSeen, true)
		snd.end = end
		if p.Flags.Has(header.SYN) {
			if !hasAck {
				return // simultaneous open: nothing more to learn
			}
		} else if !e.sideIs(dir^1, sideSeen) {
			rcv.end = ack // keep the ACK checks passable until it is seen
		}
	} else if p.Flags.Has(header.SYN) && end.GreaterThan(snd.end) && (old == SynSent || old == SynRecv) {
		// A new SYN (RFC 793 reinitialisation): restart this side.
		snd.end = end
		if dir == Reply && !hasAck {
			return
		}
	}
	if !hasAck || (p.Flags.Has(header.RST) && ack == 0) {
		ack = rcv.end
	}
	if p.Flags.Has(header.RST) && seq == 0 && old == SynSent {
		seq = snd.end
		end = snd.end
	}
	if end.GreaterThan(snd.end) {
		snd.end = end
		e.markSide(dir, sideUnacked, true)
	}
	if hasAck {
		if !e.sideIs(dir, sideMaxackSet) || ack.GreaterThan(snd.maxack) {
			snd.maxack = ack
			e.markSide(dir, sideMaxackSet, true)
		}
	}
	if ack.GreaterThanEq(rcv.end) {
		e.markSide(dir^1, sideUnacked, false)
	}
	if idx == clsAck {
		if e.lastDir() == dir && e.lastSeq == seq && e.lastAck == ack &&
			e.lastEnd == end && e.lastWin == p.Window {
			e.retrans++
		} else {
			e.mark(efLastReply, dir == Reply)
			e.lastSeq, e.lastAck, e.lastEnd, e.lastWin = seq, ack, end, p.Window
			e.retrans = 0
		}
	}
}

// commit is the in_window tail of nf_conntrack_tcp_packet: the state
// change, the timeout choice and the ASSURED/UNREPLIED handling.
func (e *Entry) commit(p *Packet, dir Dir, idx class, old, next State) {
	e.setLast(dir, idx)
	e.state = next
	if old != next && next == FinWait {
		e.markSide(dir, sideCloseInit, true)
	}

	c := e.conf()
	timeout := c.timeout(next)
	switch {
	case int(e.retrans) >= c.MaxRetransCount && timeout > c.MaxRetrans:
		timeout = c.MaxRetrans
	case idx == clsRst:
		timeout = c.Close
	case (e.sideIs(0, sideUnacked) || e.sideIs(1, sideUnacked)) && timeout > c.Unacknowledged:
		timeout = c.Unacknowledged
	case e.lastWin == 0 && timeout > c.MaxRetrans:
		timeout = c.MaxRetrans
	}
	e.setOutcome(Tracked)

	if !e.is(efReplied) {
		if p.Flags.Has(header.RST) {
			// Only a RST came back (or the originator gave up): the kernel
			// deletes the entry at once.
			e.mark(efAlive, false)
			e.setOutcome(Deleted)
			return
		}
		if idx == clsSyn && old == SynSent {
			// A retransmitted SYN does not renew the timer.
			e.markReplied(dir)
			return
		}
		if next == Established && timeout > c.Unacknowledged {
			// Picked up mid-stream without a reply yet.
			timeout = c.Unacknowledged
		}
	} else if !e.is(efAssured) && (old == SynRecv || old == Established) && next == Established {
		e.mark(efAssured, true)
	}
	e.deadline = p.T.UnixNano() + int64(timeout)
	e.markReplied(dir)
}

// markReplied is the core's IPS_SEEN_REPLY_BIT update, done after the TCP
// tracker returned success.
func (e *Entry) markReplied(dir Dir) {
	if dir == Reply {
		e.mark(efReplied, true)
	}
}
