package netlab

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Range is an inclusive range of counts.
type Range struct{ Min, Max uint64 }

// Exactly is the range holding only n.
func Exactly(n uint64) Range { return Range{n, n} }

// AtLeast is the range of n and more.
func AtLeast(n uint64) Range { return Range{n, math.MaxUint64} }

// Few is the retransmission range of scenarios that lose nothing: none
// is expected, but a loaded machine can delay an ACK past a tail loss
// probe (RFC 8985 section 7) or an RTO and so cause a few spurious
// retransmissions, which the capture then shows like any other.
var Few = Range{0, 3}

// Contains reports whether n is in r.
func (r Range) Contains(n uint64) bool { return n >= r.Min && n <= r.Max }

func (r Range) String() string {
	switch {
	case r.Min == r.Max:
		return fmt.Sprint(r.Min)
	case r.Max == math.MaxUint64:
		return fmt.Sprintf(">= %d", r.Min)
	}
	return fmt.Sprintf("%d..%d", r.Min, r.Max)
}

// Want is what a scenario means the kernel to show when its capture
// ends. Socket and entry counts cover the whole namespace: a lab holds
// only its scenario's connections.
type Want struct {
	// Client and Server count each side's TCP sockets by state,
	// listeners left out; a state not named must have none.
	Client, Server map[tcp.State]int
	// Conntrack counts the router's TCP conntrack entries by state name;
	// a state not named must have none.
	Conntrack map[string]int
	// RetransClient and RetransServer bound each side's TcpRetransSegs.
	RetransClient, RetransServer Range
	// SYNs is the number of SYN segments without ACK in the capture.
	SYNs int
}

// Result is a scenario's capture and the kernel's view when it ended.
type Result struct {
	// Name is the scenario's name.
	Name string
	// Pcap is the capture file (pcap, Ethernet), taken on CaptureDev in
	// the router. It is removed when the test ends.
	Pcap       string
	CaptureDev string
	// Taken and TakenEnd bracket the ground-truth snapshot (ss, conntrack
	// and the counters were read in parallel between them); the capture
	// was stopped right after TakenEnd, so packets stamped after Taken
	// may postdate the snapshot.
	Taken, TakenEnd time.Time
	// Client and Server are `ss -tanoi` in each namespace.
	Client, Server []Socket
	// Conntrack is the router's TCP conntrack table.
	Conntrack []CTEntry
	// RetransClient and RetransServer are each namespace's
	// TcpRetransSegs.
	RetransClient, RetransServer uint64
	// Want is what the scenario intends the kernel to show.
	Want Want
}

// ClientState returns the state of the client's socket for the connection
// from client to server, or tcp.Closed when the client has no such socket.
func (r Result) ClientState(client, server netip.AddrPort) tcp.State {
	return lookup(r.Client, client, server)
}

// ServerState returns the state of the server's socket for the connection
// from client to server (a SYN-RECV request included), or tcp.Closed when
// the server has none.
func (r Result) ServerState(client, server netip.AddrPort) tcp.State {
	return lookup(r.Server, server, client)
}

func lookup(socks []Socket, local, peer netip.AddrPort) tcp.State {
	for _, s := range socks {
		if s.Local == local && s.Peer == peer {
			return s.State
		}
	}
	return tcp.Closed
}

// ConntrackEntry returns the router's entry for the connection from
// client to server.
func (r Result) ConntrackEntry(client, server netip.AddrPort) (CTEntry, bool) {
	for _, e := range r.Conntrack {
		if e.Orig.Src == client && e.Orig.Dst == server {
			return e, true
		}
	}
	return CTEntry{}, false
}

// CountStates counts sockets by state, listeners left out.
func CountStates(socks []Socket) map[tcp.State]int {
	m := map[tcp.State]int{}
	for _, s := range socks {
		if s.State != tcp.Listen {
			m[s.State]++
		}
	}
	return m
}

// CountConntrack counts conntrack entries by state.
func CountConntrack(entries []CTEntry) map[string]int {
	m := map[string]int{}
	for _, e := range entries {
		m[e.State]++
	}
	return m
}

// Check compares the kernel's view with Want (everything but SYNs, which
// needs the capture read) and returns an error listing every difference.
func (r Result) Check() error {
	var diffs []string
	diffStates := func(side string, got, want map[tcp.State]int) {
		for _, s := range unionKeys(got, want) {
			if got[s] != want[s] {
				diffs = append(diffs, fmt.Sprintf("%s has %d %v sockets, want %d", side, got[s], s, want[s]))
			}
		}
	}
	diffStates("client", CountStates(r.Client), r.Want.Client)
	diffStates("server", CountStates(r.Server), r.Want.Server)
	got := CountConntrack(r.Conntrack)
	for _, s := range unionKeys(got, r.Want.Conntrack) {
		if got[s] != r.Want.Conntrack[s] {
			diffs = append(diffs, fmt.Sprintf("conntrack has %d %s entries, want %d", got[s], s, r.Want.Conntrack[s]))
		}
	}
	if !r.Want.RetransClient.Contains(r.RetransClient) {
		diffs = append(diffs, fmt.Sprintf("client retransmitted %d segments, want %v", r.RetransClient, r.Want.RetransClient))
	}
	if !r.Want.RetransServer.Contains(r.RetransServer) {
		diffs = append(diffs, fmt.Sprintf("server retransmitted %d segments, want %v", r.RetransServer, r.Want.RetransServer))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s: %s\n%s", r.Name, strings.Join(diffs, "; "), r.Summary())
	}
	return nil
}

func unionKeys[K comparable](a, b map[K]int) []K {
	seen := map[K]bool{}
	var keys []K
	for _, m := range []map[K]int{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	return keys
}

// Summary renders the kernel's view in a few lines: each side's sockets
// counted by state (and listed when there are few), the conntrack states,
// and the retransmission counters.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (capture %s on %s)\n", r.Name, r.Pcap, r.CaptureDev)
	for _, side := range []struct {
		name  string
		socks []Socket
		rtx   uint64
	}{{"client", r.Client, r.RetransClient}, {"server", r.Server, r.RetransServer}} {
		fmt.Fprintf(&b, "  %s: %s; TcpRetransSegs %d\n", side.name, formatCounts(CountStates(side.socks)), side.rtx)
		if len(side.socks) <= 4 {
			for _, s := range side.socks {
				fmt.Fprintf(&b, "    %s\n", s)
			}
		}
	}
	fmt.Fprintf(&b, "  conntrack: %s\n", formatCounts(CountConntrack(r.Conntrack)))
	if len(r.Conntrack) <= 2 {
		for _, e := range r.Conntrack {
			fmt.Fprintf(&b, "    %s\n", e.Line)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func formatCounts[K comparable](m map[K]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range unionKeys(m, nil) {
		parts = append(parts, fmt.Sprintf("%v=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
