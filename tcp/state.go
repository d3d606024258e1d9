package tcp

import (
	"fmt"
	"strings"
)

// State is one of the eleven connection states of RFC 9293 §3.3.2.
type State uint8

// The connection states, in the order RFC 9293 §3.3.2 lists them.
const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

// NumStates is the number of connection states.
const NumStates = int(TimeWait) + 1

// States lists every state in RFC order.
var States = [NumStates]State{
	Closed, Listen, SynSent, SynReceived, Established,
	FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait,
}

var stateNames = [NumStates]string{
	"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
}

// ssNames are the spellings `ss` prints (iproute2's sstate_name).
var ssNames = [NumStates]string{
	"UNCONN", "LISTEN", "SYN-SENT", "SYN-RECV", "ESTAB",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
}

// String returns the state as RFC 9293 spells it, for example "SYN-RECEIVED".
func (s State) String() string {
	if int(s) < NumStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// SSName returns the state as `ss` prints it, for example "SYN-RECV".
func (s State) SSName() string {
	if int(s) < NumStates {
		return ssNames[s]
	}
	return s.String()
}

// Synchronized reports whether the state is one of the synchronized states
// of RFC 9293 §3.5.2: ESTABLISHED and every state after it.
func (s State) Synchronized() bool { return s >= Established && int(s) < NumStates }

// MarshalText spells the state as String does, so JSON carries "TIME-WAIT".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts any spelling ParseState accepts.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseState reads a state name in any of the spellings people meet: the
// RFC's ("SYN-RECEIVED"), ss's ("SYN-RECV", "ESTAB"), netstat's and
// conntrack's ("SYN_RECV", "TIME_WAIT"), ipvsadm's ("syn_recv"), the
// article's ("SYN_RCVD", "FIN_WAIT1"), in any case.
func ParseState(name string) (State, error) {
	k := strings.ToUpper(strings.TrimSpace(name))
	k = strings.NewReplacer("_", "", "-", "", " ", "").Replace(k)
	switch k {
	case "CLOSED", "CLOSE", "UNCONN", "NONE":
		return Closed, nil
	case "LISTEN":
		return Listen, nil
	case "SYNSENT":
		return SynSent, nil
	case "SYNRECEIVED", "SYNRECV", "SYNRCVD":
		return SynReceived, nil
	case "ESTABLISHED", "ESTAB":
		return Established, nil
	case "FINWAIT1", "FINWAIT":
		return FinWait1, nil
	case "FINWAIT2":
		return FinWait2, nil
	case "CLOSEWAIT":
		return CloseWait, nil
	case "CLOSING":
		return Closing, nil
	case "LASTACK":
		return LastAck, nil
	case "TIMEWAIT", "TIMEDWAIT", "ITMEDWAIT":
		return TimeWait, nil
	}
	return Closed, fmt.Errorf("tcp: unknown state %q (want an RFC 9293 name such as SYN-RECEIVED, or an ss/netstat/ipvsadm spelling)", name)
}

// StatesNamed returns the states a filter name selects. It takes every
// name ParseState does, and the names that cover several states: the
// FIN_WAIT of conntrack and IPVS (FIN-WAIT-1 and FIN-WAIT-2), conntrack's
// SYN_SENT2 (a simultaneous open's SYN-SENT), IPVS's SYNACK (SYN-RECEIVED),
// and ss's state groups: "all", "connected" (all but LISTEN and CLOSED),
// "synchronized" (ESTABLISHED and after, RFC 9293 §3.5.2) and "bucket"
// (SYN-RECEIVED and TIME-WAIT, the minisocket states).
func StatesNamed(name string) ([]State, error) {
	k := strings.ToUpper(strings.TrimSpace(name))
	k = strings.NewReplacer("_", "", "-", "", " ", "").Replace(k)
	switch k {
	case "FINWAIT":
		return []State{FinWait1, FinWait2}, nil
	case "SYNSENT2":
		return []State{SynSent}, nil
	case "SYNACK":
		return []State{SynReceived}, nil
	case "ALL":
		return States[:], nil
	case "CONNECTED":
		return []State{SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait}, nil
	case "SYNCHRONIZED":
		return []State{Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait}, nil
	case "BUCKET":
		return []State{SynReceived, TimeWait}, nil
	}
	s, err := ParseState(name)
	if err != nil {
		return nil, fmt.Errorf("tcp: unknown state %q (want an RFC 9293 name such as SYN-RECEIVED, an ss, conntrack or ipvsadm spelling such as syn-recv or SYN_RECV, or one of all, connected, synchronized, bucket)", name)
	}
	return []State{s}, nil
}
