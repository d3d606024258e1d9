package ipvs

import "time"

// State is an IPVS TCP connection state, numbered as the kernel's
// IP_VS_TCP_S_* (include/net/ip_vs.h).
type State uint8

// The states, in the kernel's order. String gives the names ipvsadm prints
// (ip_vs_proto_tcp.c tcp_state_name_table).
const (
	None        State = iota // NONE
	Established              // ESTABLISHED
	SynSent                  // SYN_SENT
	SynRecv                  // SYN_RECV
	FinWait                  // FIN_WAIT
	TimeWait                 // TIME_WAIT
	Close                    // CLOSE
	CloseWait                // CLOSE_WAIT
	LastAck                  // LAST_ACK
	Listen                   // LISTEN
	SynAck                   // SYNACK
	numStates
)

var stateNames = [numStates]string{"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV",
	"FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK"}

// String is the state's name as `ipvsadm -lc` prints it.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "ERR!"
}

// class is a packet's row in the table (tcp_state_idx).
type class uint8

const (
	clsSyn class = iota
	clsFin
	clsAck
	clsRst
	numClasses
)

// offset selects one of the three halves of the table (tcp_state_off).
type offset uint8

const (
	offInput     offset = iota // client -> director
	offOutput                  // real server -> client through a NAT director
	offInputOnly               // client -> director when replies bypass it (DR, tunnel)
	numOffsets
)

// transitions is the kernel's normal table, tcp_states in
// net/netfilter/ipvs/ip_vs_proto_tcp.c, rewritten with one row per current
// state (the kernel has one row per flag class). Each row gives the next
// state for a packet whose winning flag (RST > SYN > FIN > ACK) is SYN,
// FIN, ACK, RST. Read from kernel-patches/bpf at commit 7a3e927abe70 and
// torvalds/linux (the same cells in both).
//
// Worth noticing:
//   - INPUT and INPUT_ONLY differ in three cells: a client FIN in
//     ESTABLISHED gives CLOSE_WAIT when the director also sees the server
//     (INPUT) but FIN_WAIT when it does not (INPUT_ONLY); a client FIN in
//     FIN_WAIT gives TIME_WAIT vs FIN_WAIT; a client RST in SYNACK gives
//     SYN_RECV vs CLOSE.
//   - So in DR mode a connection the client closes normally ends in
//     FIN_WAIT (2 min): the client's FIN moves ESTABLISHED to FIN_WAIT and
//     its last ACK leaves FIN_WAIT as it is.
//   - A server RST in SYN_SENT leaves SYN_SENT (OUTPUT rst row).
var transitions = [numOffsets][numStates][numClasses]State{
	offInput: {
		//           SYN       FIN        ACK          RST
		None:        {SynRecv, Close, Established, Close},
		Established: {Established, CloseWait, Established, Close},
		SynSent:     {Established, SynSent, SynSent, Close},
		SynRecv:     {SynRecv, TimeWait, Established, SynRecv},
		FinWait:     {SynRecv, TimeWait, FinWait, Close},
		TimeWait:    {SynRecv, TimeWait, TimeWait, Close},
		Close:       {SynRecv, Close, Close, Close},
		CloseWait:   {SynRecv, CloseWait, CloseWait, Close},
		LastAck:     {SynRecv, LastAck, Close, LastAck},
		Listen:      {SynRecv, Listen, Listen, Listen},
		SynAck:      {SynRecv, TimeWait, Established, SynRecv},
	},
	offOutput: {
		None:        {SynSent, TimeWait, Established, Close},
		Established: {Established, FinWait, Established, Close},
		SynSent:     {SynSent, SynSent, SynSent, SynSent},
		SynRecv:     {SynRecv, TimeWait, Established, Close},
		FinWait:     {SynSent, FinWait, FinWait, Close},
		TimeWait:    {SynSent, TimeWait, TimeWait, TimeWait},
		Close:       {SynSent, Close, Close, Close},
		CloseWait:   {SynSent, TimeWait, CloseWait, Close},
		LastAck:     {SynSent, LastAck, LastAck, Close},
		Listen:      {Listen, Listen, Established, Close},
		SynAck:      {SynRecv, TimeWait, Established, Close},
	},
	offInputOnly: {
		None:        {SynRecv, Close, Established, Close},
		Established: {Established, FinWait, Established, Close},
		SynSent:     {Established, SynSent, SynSent, Close},
		SynRecv:     {SynRecv, TimeWait, Established, SynRecv},
		FinWait:     {SynRecv, FinWait, FinWait, Close},
		TimeWait:    {SynRecv, TimeWait, TimeWait, Close},
		Close:       {SynRecv, Close, Close, Close},
		CloseWait:   {SynRecv, CloseWait, CloseWait, Close},
		LastAck:     {SynRecv, LastAck, Close, LastAck},
		Listen:      {SynRecv, Listen, Listen, Listen},
		SynAck:      {SynRecv, TimeWait, Established, Close},
	},
}

// Config holds the per-state timeouts (ipvsadm --set changes ESTABLISHED,
// FIN_WAIT and the UDP one; the others only through the netlink API) and the
// sloppy_tcp sysctl.
type Config struct {
	None, Established, SynSent, SynRecv, FinWait, TimeWait, Close,
	CloseWait, LastAck, Listen, SynAck time.Duration

	// SloppyTCP is /proc/sys/net/ipv4/vs/sloppy_tcp: when set, any
	// non-RST packet from a client may create an entry, not only a SYN.
	SloppyTCP bool
}

// Defaults returns the kernel's tcp_timeouts (ip_vs_proto_tcp.c): NONE 2 s,
// ESTABLISHED 15 min, SYN_SENT 2 min, SYN_RECV 1 min, FIN_WAIT 2 min,
// TIME_WAIT 2 min, CLOSE 10 s, CLOSE_WAIT 60 s, LAST_ACK 30 s, LISTEN 2 min,
// SYNACK 120 s; sloppy_tcp off.
func Defaults() Config {
	return Config{
		None:        2 * time.Second,
		Established: 15 * time.Minute,
		SynSent:     2 * time.Minute,
		SynRecv:     1 * time.Minute,
		FinWait:     2 * time.Minute,
		TimeWait:    2 * time.Minute,
		Close:       10 * time.Second,
		CloseWait:   60 * time.Second,
		LastAck:     30 * time.Second,
		Listen:      2 * time.Minute,
		SynAck:      120 * time.Second,
	}
}

func (c *Config) timeout(s State) time.Duration {
	switch s {
	case Established:
		return c.Established
	case SynSent:
		return c.SynSent
	case SynRecv:
		return c.SynRecv
	case FinWait:
		return c.FinWait
	case TimeWait:
		return c.TimeWait
	case Close:
		return c.Close
	case CloseWait:
		return c.CloseWait
	case LastAck:
		return c.LastAck
	case Listen:
		return c.Listen
	case SynAck:
		return c.SynAck
	}
	return c.None
}
