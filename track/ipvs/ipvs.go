// Package ipvs models the connection entry the Linux IPVS load balancer (the
// director) keeps for one TCP connection to a virtual service: the state and
// the expire countdown that `ipvsadm -lc` prints.
//
// It is a pure, deterministic value: feed it the packets the director sees,
// one at a time with their timestamps, and ask At(t) at any instant.
//
// Source for every rule: net/netfilter/ipvs/ip_vs_proto_tcp.c in the Linux
// kernel (tcp_states, tcp_timeouts, tcp_state_idx, set_tcp_state,
// tcp_conn_schedule), net/netfilter/ipvs/ip_vs_ctl.c __ip_vs_update_dest (the
// IP_VS_CONN_F_NOOUTPUT flag for non-NAT forwarding) and
// net/netfilter/ipvs/ip_vs_core.c ip_vs_in (a new entry is created in state
// NONE and the packet that created it is run through the table at once).
//
// Not modelled: the secure_tcp defence (the tcp_states_dos table, used only
// when /proc/sys/net/ipv4/vs/secure_tcp is raised); connection templates
// (persistence), synchronisation to a backup director, and
// expire_nodest_conn. The conn_reuse_mode rule that replaces an entry in
// TIME_WAIT when a new SYN arrives is not modelled separately: it yields the
// same state and timer as the table's TIME_WAIT + SYN cell (SYN_RECV, 60 s).
package ipvs

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
)

// Dir is the direction of a packet through the director.
type Dir uint8

const (
	// FromClient is client -> virtual service (the kernel's INPUT).
	FromClient Dir = iota
	// FromServer is real server -> client (the kernel's OUTPUT). Only a NAT
	// director sees these.
	FromServer
)

// Mode is the forwarding method of the real server.
type Mode uint8

const (
	// NAT (masquerading): replies pass back through the director, which sees
	// both directions.
	NAT Mode = iota
	// DR covers direct routing and tunnelling: the real server answers the
	// client directly, the director sees only client packets
	// (IP_VS_CONN_F_NOOUTPUT, so the INPUT_ONLY table is used).
	DR
)

// Packet is one TCP segment as the director sees it.
type Packet struct {
	T     time.Time       // when it passed
	Dir   Dir             // FromClient or FromServer
	Flags header.TCPFlags // control bits
}

// Outcome says what the model did with the last packet.
type Outcome uint8

const (
	// Tracked: the entry's state and timer were updated.
	Tracked Outcome = iota
	// Created: the packet created the entry (New, or Update after expiry).
	Created
	// Refused: there is no entry and this packet does not create one.
	Refused
	// Unseen: the director never sees this packet (a server reply in DR
	// mode); nothing changes.
	Unseen
)

var outcomeNames = [...]string{"tracked", "created", "refused", "unseen"}

// String names the outcome.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "?"
}

// Entry is the director's connection entry for one TCP connection.
//
// An Entry is kept small, as a tracker holds one per connection: the
// settings are a 16-bit index into a registry of shared settings and the
// deadline is in Unix nanoseconds (16 bytes).
type Entry struct {
	deadline int64 // Unix nanoseconds
	mode     Mode
	alive    bool
	noOutput bool // IP_VS_CONN_F_NOOUTPUT
	state    State
	last     Outcome
	cfg      uint16 // index of the settings in the registry (settings.go)
}

// New creates the entry a director with default settings would create for
// first, in the given forwarding mode. It returns false when IPVS would not
// schedule the packet (see NewWithConfig).
func New(first Packet, mode Mode) (*Entry, bool) {
	return NewWithConfig(first, mode, Defaults())
}

// NewWithConfig is New with the given settings. Following
// tcp_conn_schedule: only a packet from the client can create an entry; a
// RST never does; without cfg.SloppyTCP only a packet with SYN does. The new
// entry starts in NONE and the packet is applied to it at once, so a SYN
// leaves it in SYN_RECV.
func NewWithConfig(first Packet, mode Mode, cfg Config) (*Entry, bool) {
	e, ok := MakeWithConfig(first, mode, cfg)
	if !ok {
		return nil, false
	}
	return &e, true
}

// Make is New returning the entry as a value, for a holder that embeds it
// (a tracker keeps one per connection): it allocates nothing.
func Make(first Packet, mode Mode) (Entry, bool) { return makeEntry(first, mode, 0) }

// MakeWithConfig is NewWithConfig returning the entry as a value.
// It returns false as well when the process has already registered 65536
// distinct settings (settings.go), which no real program does.
func MakeWithConfig(first Packet, mode Mode, cfg Config) (Entry, bool) {
	i, ok := shared(cfg)
	if !ok {
		return Entry{}, false
	}
	return makeEntry(first, mode, i)
}

// makeEntry is MakeWithConfig with the settings already registered as
// index cfg: it allocates nothing.
func makeEntry(first Packet, mode Mode, cfg uint16) (Entry, bool) {
	e := Entry{cfg: cfg, mode: mode}
	if !e.create(first) {
		return Entry{}, false
	}
	return e, true
}

func (e *Entry) create(p Packet) bool {
	if p.Dir != FromClient || p.Flags.Has(header.RST) ||
		!(e.conf().SloppyTCP || p.Flags.Has(header.SYN)) {
		e.alive = false
		e.last = Refused
		return false
	}
	e.alive = true
	e.noOutput = e.mode != NAT
	e.state = None
	e.step(p)
	e.last = Created
	return true
}

// Update feeds the next packet. A server packet in DR mode is not seen by
// the director and changes nothing. If the entry has expired (p.T at or
// after its deadline) the director has forgotten it: the packet is treated
// as New treats a first packet.
func (e *Entry) Update(p Packet) {
	if e.mode != NAT && p.Dir != FromClient {
		e.last = Unseen
		return
	}
	if !e.alive || p.T.UnixNano() >= e.deadline {
		e.create(p)
		return
	}
	e.step(p)
	e.last = Tracked
}

// step is set_tcp_state followed by the timer refresh that ip_vs_conn_put
// does after every packet (the timer restarts at the new state's timeout).
func (e *Entry) step(p Packet) {
	off := offInput
	if p.Dir != FromClient {
		off = offOutput
	}
	if e.noOutput {
		if off == offOutput {
			e.noOutput = false
		} else {
			off = offInputOnly
		}
	}
	next := Close // a packet with none of RST/SYN/FIN/ACK sends the entry to CLOSE
	if c, ok := flagClass(p.Flags); ok {
		next = transitions[off][e.state][c]
	}
	e.state = next
	e.deadline = p.T.UnixNano() + int64(e.conf().timeout(next))
}

// flagClass is tcp_state_idx: RST wins, then SYN, then FIN, then ACK.
func flagClass(f header.TCPFlags) (class, bool) {
	switch {
	case f.Has(header.RST):
		return clsRst, true
	case f.Has(header.SYN):
		return clsSyn, true
	case f.Has(header.FIN):
		return clsFin, true
	case f.Has(header.ACK):
		return clsAck, true
	}
	return 0, false
}

// At reports the entry at instant t: the state name and the time left, as
// `ipvsadm -lc` shows them (it prints the expire as mm:ss), and whether the
// entry exists. The entry is gone from its deadline on; then At returns "",
// 0, false.
func (e *Entry) At(t time.Time) (state string, expire time.Duration, alive bool) {
	now := t.UnixNano()
	if !e.alive || now >= e.deadline {
		return "", 0, false
	}
	return e.state.String(), time.Duration(e.deadline - now), true
}

// State is the entry's current state, whatever the time.
func (e *Entry) State() State { return e.state }

// Active reports whether the kernel counts the entry as an active
// connection of its real server (the ActiveConn column of `ipvsadm -ln`)
// rather than an inactive one: tcp_state_active_table marks ESTABLISHED,
// SYN_SENT, SYN_RECV and SYNACK active.
func (e *Entry) Active() bool {
	switch e.state {
	case Established, SynSent, SynRecv, SynAck:
		return e.alive
	}
	return false
}

// LastOutcome says what happened to the last packet.
func (e *Entry) LastOutcome() Outcome { return e.last }
