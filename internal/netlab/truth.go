package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Socket is one TCP socket as ss -tanoi shows it.
type Socket struct {
	// State is the RFC 9293 state; SSState is ss's own spelling of it
	// (ESTAB, SYN-RECV, FIN-WAIT-1, ...).
	State   tcp.State
	SSState string
	// RecvQ and SendQ are ss's Recv-Q and Send-Q columns: for a
	// connection, bytes not yet read by the application and bytes not yet
	// acknowledged by the peer; for a listener, the accept queue and its
	// limit.
	RecvQ, SendQ uint64
	// Local and Peer are the socket's addresses; a wildcard ("*",
	// "0.0.0.0:*") leaves the address or the port zero.
	Local, Peer netip.AddrPort
	// Timer is the name of the pending timer from -o: "on" (retransmit,
	// or SYN-ACK retransmit for SYN-RECV), "keepalive", "timewait" (also
	// the FIN-WAIT-2 timer of an orphan), "persist", or "" for none.
	// TimerLeft is the time left on it, and TimerCount its third field
	// (retransmissions or probes so far).
	Timer      string
	TimerLeft  time.Duration
	TimerCount int
	// RetransNow and RetransTotal come from -i "retrans:NOW/TOTAL": the
	// segments retransmitted and still unacknowledged, and all
	// retransmissions of the connection (tcp_info tcpi_retrans and
	// tcpi_total_retrans). BytesRetrans is -i "bytes_retrans".
	RetransNow, RetransTotal uint64
	BytesRetrans             uint64
	// Info is the raw -i line (empty for TIME-WAIT and SYN-RECV, which
	// have no full socket).
	Info string
}

// String renders the socket in one line, for logs.
func (s Socket) String() string {
	out := fmt.Sprintf("%-11s %s -> %s", s.SSState, s.Local, s.Peer)
	if s.Timer != "" {
		out += fmt.Sprintf(" timer:(%s,%v,%d)", s.Timer, s.TimerLeft, s.TimerCount)
	}
	if s.RetransTotal > 0 {
		out += fmt.Sprintf(" retrans:%d/%d", s.RetransNow, s.RetransTotal)
	}
	return out
}

// ParseSS parses the output of `ss -tanoiH`: one line per socket, and
// the -i details on a following line that starts with white space.
// Lines it cannot read give an error naming the line.
func ParseSS(out string) ([]Socket, error) {
	var socks []Socket
	for n, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(socks) == 0 {
				return nil, fmt.Errorf("ss line %d: details before any socket: %q", n+1, line)
			}
			s := &socks[len(socks)-1]
			s.Info = strings.TrimSpace(line)
			if err := s.parseInfo(); err != nil {
				return nil, fmt.Errorf("ss line %d: %v", n+1, err)
			}
			continue
		}
		s, err := parseSSLine(line)
		if err != nil {
			return nil, fmt.Errorf("ss line %d: %v", n+1, err)
		}
		socks = append(socks, s)
	}
	return socks, nil
}

func parseSSLine(line string) (Socket, error) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return Socket{}, fmt.Errorf("want at least 5 fields, got %q", line)
	}
	var s Socket
	var err error
	s.SSState = f[0]
	if s.State, err = tcp.ParseState(f[0]); err != nil {
		return Socket{}, err
	}
	if s.RecvQ, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return Socket{}, fmt.Errorf("Recv-Q %q: %v", f[1], err)
	}
	if s.SendQ, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return Socket{}, fmt.Errorf("Send-Q %q: %v", f[2], err)
	}
	if s.Local, err = parseSSAddr(f[3]); err != nil {
		return Socket{}, err
	}
	if s.Peer, err = parseSSAddr(f[4]); err != nil {
		return Socket{}, err
	}
	for _, extra := range f[5:] {
		if rest, ok := strings.CutPrefix(extra, "timer:("); ok {
			if err := s.parseTimer(strings.TrimSuffix(rest, ")")); err != nil {
				return Socket{}, err
			}
		}
	}
	return s, nil
}

// parseSSAddr reads ss's ADDRESS:PORT, where the address may be "*",
// bracketed IPv6, or carry a %interface, and the port may be "*".
func parseSSAddr(text string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(text, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q has no port", text)
	}
	host, portText := text[:i], text[i+1:]
	if j := strings.IndexByte(host, '%'); j >= 0 {
		host = host[:j]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	var port uint64
	if portText != "*" {
		var err error
		if port, err = strconv.ParseUint(portText, 10, 16); err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: port: %v", text, err)
		}
	}
	var addr netip.Addr
	if host != "*" {
		var err error
		if addr, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %v", text, err)
		}
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// parseTimer reads the inside of "timer:(NAME,LEFT,COUNT)".
func (s *Socket) parseTimer(text string) error {
	parts := strings.Split(text, ",")
	if len(parts) != 3 {
		return fmt.Errorf("timer %q: want name,time,count", text)
	}
	left, err := ParseSSDuration(parts[1])
	if err != nil {
		return fmt.Errorf("timer %q: %v", text, err)
	}
	count, err := strconv.Atoi(parts[2])
	if err != nil {
		return fmt.Errorf("timer %q: count: %v", text, err)
	}
	s.Timer, s.TimerLeft, s.TimerCount = parts[0], left, count
	return nil
}

// ParseSSDuration reads a time as ss prints a timer's time left
// (iproute2 misc/ss.c, print_ms_timer): an optional "Nmin", then seconds
// and milliseconds as "Nsec", "N.MMMsec" (older versions: "N.MMMms",
// which also means seconds), or "MMMms"; the empty string is zero.
func ParseSSDuration(text string) (time.Duration, error) {
	var d time.Duration
	rest := text
	if i := strings.Index(rest, "min"); i >= 0 {
		m, err := strconv.Atoi(rest[:i])
		if err != nil || m < 0 {
			return 0, fmt.Errorf("time %q: bad minutes", text)
		}
		d += time.Duration(m) * time.Minute
		rest = rest[i+3:]
	}
	if rest == "" {
		return d, nil
	}
	var unit time.Duration
	switch {
	case strings.HasSuffix(rest, "sec"):
		rest, unit = strings.TrimSuffix(rest, "sec"), time.Second
	case strings.HasSuffix(rest, "ms"):
		rest, unit = strings.TrimSuffix(rest, "ms"), time.Millisecond
	default:
		return 0, fmt.Errorf("time %q: no unit", text)
	}
	if whole, frac, ok := strings.Cut(rest, "."); ok {
		// "S.MMM" is always seconds and milliseconds, whichever suffix.
		secs, err1 := strconv.Atoi(whole)
		ms, err2 := strconv.Atoi(frac)
		if err1 != nil || err2 != nil || secs < 0 || ms < 0 || len(frac) != 3 {
			return 0, fmt.Errorf("time %q: bad seconds", text)
		}
		return d + time.Duration(secs)*time.Second + time.Duration(ms)*time.Millisecond, nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("time %q: bad number", text)
	}
	return d + time.Duration(n)*unit, nil
}

// parseInfo picks the retransmission figures from the -i line.
func (s *Socket) parseInfo() error {
	for _, f := range strings.Fields(s.Info) {
		key, val, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		switch key {
		case "retrans":
			now, total, ok := strings.Cut(val, "/")
			a, err1 := strconv.ParseUint(now, 10, 64)
			b, err2 := strconv.ParseUint(total, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("bad retrans %q", f)
			}
			s.RetransNow, s.RetransTotal = a, b
		case "bytes_retrans":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return fmt.Errorf("bad bytes_retrans %q", f)
			}
			s.BytesRetrans = n
		}
	}
	return nil
}

// Tuple is one direction of a conntrack entry.
type Tuple struct {
	Src, Dst netip.AddrPort
}

// CTEntry is one TCP entry of the router's conntrack table.
type CTEntry struct {
	// State is conntrack's TCP state name: SYN_SENT, SYN_RECV,
	// ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE,
	// SYN_SENT2 (net/netfilter/nf_conntrack_proto_tcp.c, tcp_conntrack_names).
	State string
	// Timeout is the time left before the entry expires, in whole seconds
	// as conntrack prints it.
	Timeout time.Duration
	// Orig is the direction of the first packet; Reply the expected
	// answer's direction.
	Orig, Reply Tuple
	// Assured: traffic was seen both ways and the entry is kept under
	// pressure; Unreplied: no reply was seen yet.
	Assured, Unreplied bool
	// Line is conntrack's line, for logs.
	Line string
}

// ParseConntrack parses `conntrack -L -p tcp` output (lines other than TCP
// entries, such as the "N flow entries" summary, are skipped).
func ParseConntrack(out string) ([]CTEntry, error) {
	var entries []CTEntry
	for n, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// With -o extended each line starts with the layer-3 name and
		// number ("ipv4 2"); skip them.
		if len(f) >= 2 && (f[0] == "ipv4" || f[0] == "ipv6") {
			f = f[2:]
		}
		if len(f) == 0 || f[0] != "tcp" {
			continue
		}
		e, err := parseCTFields(f)
		if err != nil {
			return nil, fmt.Errorf("conntrack line %d: %v: %q", n+1, err, line)
		}
		e.Line = strings.TrimSpace(line)
		entries = append(entries, e)
	}
	return entries, nil
}

func parseCTFields(f []string) (CTEntry, error) {
	// tcp 6 TIMEOUT STATE src=.. dst=.. sport=.. dport=.. [UNREPLIED]
	// src=.. dst=.. sport=.. dport=.. [ASSURED] mark=.. use=..
	if len(f) < 4 {
		return CTEntry{}, errors.New("too few fields")
	}
	var e CTEntry
	secs, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return CTEntry{}, fmt.Errorf("timeout %q: %v", f[2], err)
	}
	e.Timeout = time.Duration(secs) * time.Second
	e.State = f[3]
	var tuples [2]map[string]string
	cur := -1
	for _, tok := range f[4:] {
		switch tok {
		case "[ASSURED]":
			e.Assured = true
			continue
		case "[UNREPLIED]":
			e.Unreplied = true
			continue
		}
		key, val, ok := strings.Cut(tok, "=")
		if !ok {
			continue
		}
		if key == "src" {
			cur++
			if cur > 1 {
				return CTEntry{}, errors.New("more than two tuples")
			}
			tuples[cur] = map[string]string{}
		}
		if cur >= 0 && tuples[cur] != nil {
			if _, dup := tuples[cur][key]; !dup {
				tuples[cur][key] = val
			}
		}
	}
	if cur != 1 {
		return CTEntry{}, errors.New("want an original and a reply tuple")
	}
	for i, dst := range []*Tuple{&e.Orig, &e.Reply} {
		tp, err := ctTuple(tuples[i])
		if err != nil {
			return CTEntry{}, err
		}
		*dst = tp
	}
	return e, nil
}

func ctTuple(m map[string]string) (Tuple, error) {
	var addrs [2]netip.AddrPort
	for i, k := range [][2]string{{"src", "sport"}, {"dst", "dport"}} {
		a, err := netip.ParseAddr(m[k[0]])
		if err != nil {
			return Tuple{}, fmt.Errorf("%s: %v", k[0], err)
		}
		p, err := strconv.ParseUint(m[k[1]], 10, 16)
		if err != nil {
			return Tuple{}, fmt.Errorf("%s: %v", k[1], err)
		}
		addrs[i] = netip.AddrPortFrom(a, uint16(p))
	}
	return Tuple{Src: addrs[0], Dst: addrs[1]}, nil
}

// ParseSNMPRetrans reads TCP's RetransSegs counter from /proc/net/snmp
// text: the "Tcp:" line of names followed by the "Tcp:" line of values
// (RFC 4022 tcpRetransSegs; Linux counts every retransmitted segment,
// SYN, SYN-ACK and FIN included: net/ipv4/tcp_output.c).
func ParseSNMPRetrans(text string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if len(f) != len(names) {
			return 0, errors.New("snmp: Tcp: names and values differ in length")
		}
		for i, n := range names {
			if n == "RetransSegs" {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		return 0, errors.New("snmp: no RetransSegs")
	}
	return 0, errors.New("snmp: no Tcp: lines")
}
