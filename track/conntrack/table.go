package conntrack

import "time"

// State is a TCP conntrack state, numbered as the kernel's enum
// tcp_conntrack (include/uapi/linux/netfilter/nf_conntrack_tcp.h) so that a
// State can be compared with what ctnetlink reports.
type State uint8

// The states of net/netfilter/nf_conntrack_proto_tcp.c, in the kernel's
// order. Their names (String) are those of the kernel's
// tcp_conntrack_names, which is what `conntrack -L` and
// /proc/net/nf_conntrack print.
const (
	None        State = iota // NONE: nothing seen yet
	SynSent                  // SYN_SENT: a SYN seen in the original direction
	SynRecv                  // SYN_RECV: the SYN,ACK seen
	Established              // ESTABLISHED: the handshake's ACK seen (or a picked-up flow)
	FinWait                  // FIN_WAIT: a FIN seen
	CloseWait                // CLOSE_WAIT: the FIN acknowledged
	LastAck                  // LAST_ACK: FINs seen in both directions
	TimeWait                 // TIME_WAIT: the last ACK seen
	Close                    // CLOSE: a RST seen
	SynSent2                 // SYN_SENT2: a SYN seen from each side (simultaneous open)
	numStates
)

// Outcomes of the table beyond a real state: the kernel's sIV
// (TCP_CONNTRACK_MAX) and sIG (TCP_CONNTRACK_IGNORE).
const (
	inv State = 0xfe // the packet is invalid in this state: no change at all
	ign State = 0xff // the packet may be valid; let it pass, change nothing, remember it
)

var stateNames = [numStates]string{
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
}

// String is the state's name as `conntrack -L` prints it.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "INVALID"
}

// class is the row of the transition table a packet selects, chosen as the
// kernel's get_conntrack_index does: RST wins, then SYN (with or without
// ACK), then FIN, then ACK; a packet with none of them is "none".
type class uint8

const (
	clsSyn class = iota
	clsSynAck
	clsFin
	clsAck
	clsRst
	clsNone
	numClasses
)

var classNames = [numClasses]string{"SYN", "SYN,ACK", "FIN", "ACK", "RST", "none"}

func (c class) String() string { return classNames[c] }

// transitions is the kernel's tcp_conntracks table, rewritten with one row
// per current state (the kernel has one row per flag class) and one half
// per direction. Each row lists the next state for a packet of class SYN,
// SYN+ACK, FIN, ACK, RST, none.
//
// Source: net/netfilter/nf_conntrack_proto_tcp.c, `tcp_conntracks`
// (torvalds/linux; read from a v6.x tree, Kingxukai/linux at commit
// 9b44fff655e2, which matches mainline). The kernel's own comments explain
// each cell; in short:
//   - ORIGINAL SYN from NONE opens (SYN_SENT); from TIME_WAIT/CLOSE it is a
//     reopening (SYN_SENT; see the reopening rule in conntrack.go, Entry.packet); a SYN in a
//     synchronised state is "ignore": the receiver will answer with RST or a
//     SYN,ACK and conntrack catches up then.
//   - REPLY SYN in SYN_SENT is a simultaneous open (SYN_SENT2).
//   - SYN,ACK is only valid as an answer (REPLY in SYN_SENT, either
//     direction in SYN_SENT2); late SYN,ACKs in REPLY are ignored.
//   - FIN: first FIN -> FIN_WAIT, second -> LAST_ACK; FIN is invalid before
//     the SYN,ACK.
//   - ACK: NONE -> ESTABLISHED only in ORIGINAL (mid-stream pick-up); an ACK
//     after FIN -> CLOSE_WAIT, after both FINs -> TIME_WAIT.
//   - RST: CLOSE from any state but NONE.
//   - "none" (no SYN/FIN/ACK/RST) is always invalid.
var transitions = [2][numStates][numClasses]State{
	{ // ORIGINAL
		//          SYN       SYN,ACK   FIN       ACK          RST    none
		None:        {SynSent, inv, inv, Established, inv, inv},
		SynSent:     {SynSent, inv, inv, inv, Close, inv},
		SynRecv:     {ign, SynRecv, FinWait, Established, Close, inv},
		Established: {ign, inv, FinWait, Established, Close, inv},
		FinWait:     {ign, inv, LastAck, CloseWait, Close, inv},
		CloseWait:   {ign, inv, LastAck, CloseWait, Close, inv},
		LastAck:     {ign, inv, LastAck, TimeWait, Close, inv},
		TimeWait:    {SynSent, inv, TimeWait, TimeWait, Close, inv},
		Close:       {SynSent, inv, Close, Close, Close, inv},
		SynSent2:    {SynSent2, SynRecv, inv, inv, Close, inv},
	},
	{ // REPLY
		//          SYN       SYN,ACK   FIN       ACK          RST    none
		None:        {inv, inv, inv, inv, inv, inv},
		SynSent:     {SynSent2, SynRecv, inv, ign, Close, inv},
		SynRecv:     {inv, ign, FinWait, SynRecv, Close, inv},
		Established: {inv, ign, FinWait, Established, Close, inv},
		FinWait:     {inv, ign, LastAck, CloseWait, Close, inv},
		CloseWait:   {inv, ign, LastAck, CloseWait, Close, inv},
		LastAck:     {inv, ign, LastAck, TimeWait, Close, inv},
		TimeWait:    {SynSent, ign, TimeWait, TimeWait, Close, inv},
		Close:       {inv, ign, Close, Close, Close, inv},
		SynSent2:    {SynSent2, SynRecv, inv, ign, Close, inv},
	},
}

// Config holds the tunables of the TCP tracker: the
// net.netfilter.nf_conntrack_tcp_* sysctls. Defaults returns the kernel's.
type Config struct {
	SynSent        time.Duration // nf_conntrack_tcp_timeout_syn_sent
	SynRecv        time.Duration // nf_conntrack_tcp_timeout_syn_recv
	Established    time.Duration // nf_conntrack_tcp_timeout_established
	FinWait        time.Duration // nf_conntrack_tcp_timeout_fin_wait
	CloseWait      time.Duration // nf_conntrack_tcp_timeout_close_wait
	LastAck        time.Duration // nf_conntrack_tcp_timeout_last_ack
	TimeWait       time.Duration // nf_conntrack_tcp_timeout_time_wait
	Close          time.Duration // nf_conntrack_tcp_timeout_close
	SynSent2       time.Duration // the SYN_SENT2 timeout (no sysctl of its own in current kernels)
	MaxRetrans     time.Duration // nf_conntrack_tcp_timeout_max_retrans: the cap once MaxRetransCount is reached
	Unacknowledged time.Duration // nf_conntrack_tcp_timeout_unacknowledged: the cap while data is outstanding

	// MaxRetransCount is nf_conntrack_tcp_max_retrans: how many identical
	// retransmissions in a row cap the timeout at MaxRetrans.
	MaxRetransCount int
	// Loose is nf_conntrack_tcp_loose: when set, an ACK without a prior SYN
	// creates an entry (a connection picked up mid-stream).
	Loose bool
}

// Defaults returns the kernel's defaults. Source:
// net/netfilter/nf_conntrack_proto_tcp.c `tcp_timeouts` (SYN_SENT 2 min,
// SYN_RECV 60 s, ESTABLISHED 5 days, FIN_WAIT 2 min, CLOSE_WAIT 60 s,
// LAST_ACK 30 s, TIME_WAIT 2 min, CLOSE 10 s, SYN_SENT2 2 min, RETRANS 5
// min, UNACK 5 min) and `nf_conntrack_tcp_init_net` (tcp_loose = 1,
// tcp_max_retrans = 3).
func Defaults() Config {
	return Config{
		SynSent:         2 * time.Minute,
		SynRecv:         60 * time.Second,
		Established:     5 * 24 * time.Hour,
		FinWait:         2 * time.Minute,
		CloseWait:       60 * time.Second,
		LastAck:         30 * time.Second,
		TimeWait:        2 * time.Minute,
		Close:           10 * time.Second,
		SynSent2:        2 * time.Minute,
		MaxRetrans:      5 * time.Minute,
		Unacknowledged:  5 * time.Minute,
		MaxRetransCount: 3,
		Loose:           true,
	}
}

// timeout is the configured timeout of state s.
func (c *Config) timeout(s State) time.Duration {
	switch s {
	case SynSent:
		return c.SynSent
	case SynRecv:
		return c.SynRecv
	case Established:
		return c.Established
	case FinWait:
		return c.FinWait
	case CloseWait:
		return c.CloseWait
	case LastAck:
		return c.LastAck
	case TimeWait:
		return c.TimeWait
	case Close:
		return c.Close
	case SynSent2:
		return c.SynSent2
	}
	// NONE has no timeout of its own in the kernel (its slot is the
	// "unspecified" one, set equal to SYN_SENT's by the netlink code).
	return c.SynSent
}
