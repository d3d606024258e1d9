//go:build linux

package netlab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Scenario is one TCP situation made with kernel sockets in a fresh lab.
type Scenario struct {
	// Name is short and unique, usable as a subtest name.
	Name string
	// Doc says what the scenario does and what the kernel should show.
	Doc string
	// Run makes the situation in l, captures it, and returns the capture
	// and the kernel's view at the capture's end. It fails t when the
	// situation cannot be made.
	Run func(l *Lab, t testing.TB) Result
}

// Scenarios lists every scenario. Each runs in a lab of its own (see New)
// and takes at most a few seconds.
//
// Where a scenario loses packets, the receiving endpoint drops them in
// its own INPUT chain, not the router: the router's conntrack sees each
// packet at PREROUTING, before any FORWARD rule, so a drop in the router
// would make the capture on one router interface miss packets conntrack
// saw. This way every packet conntrack saw crosses both router
// interfaces and is in the capture, wherever it is taken; the one
// exception is the simultaneous close, where the router delays (never
// drops) the two FINs.
var Scenarios = []Scenario{
	{"handshake", "Three-way handshake and a 100-byte request and answer, then idle: both ESTABLISHED, conntrack ESTABLISHED.", (*Lab).Handshake},
	{"client-close", "The client closes first, the server closes on EOF: client TIME-WAIT, server CLOSED, conntrack TIME_WAIT.", (*Lab).ClientClose},
	{"server-close", "The server closes first, the client closes on EOF: server TIME-WAIT, client CLOSED, conntrack TIME_WAIT.", (*Lab).ServerClose},
	{"half-close", "The client shuts down its sending side (SHUT_WR); the server reads EOF and keeps sending 64 KiB, which the client reads: client FIN-WAIT-2, server CLOSE-WAIT, conntrack CLOSE_WAIT.", (*Lab).HalfClose},
	{"close-wait-leak", "The client closes; the server reads EOF but never closes: client FIN-WAIT-2 (orphan, with its FIN-WAIT-2 timer), server CLOSE-WAIT, conntrack CLOSE_WAIT.", (*Lab).CloseWaitLeak},
	{"lost-final-ack", "The client closes first; the server's INPUT chain drops the client's last ACK once: the server in LAST-ACK retransmits its FIN once, the client in TIME-WAIT ACKs it again: client TIME-WAIT, server CLOSED, one server retransmission.", (*Lab).LostFinalACK},
	{"last-ack", "As lost-final-ack, but the server drops every pure ACK from the client after the handshake, and the capture ends after the server's first FIN retransmission: client TIME-WAIT, server LAST-ACK, conntrack TIME_WAIT (it saw the ACK).", (*Lab).LastAck},
	{"refused", "The client connects to a port with no listener; the server answers RST: no sockets, and conntrack deletes the entry at once.", (*Lab).Refused},
	{"syn-flood", "hping3 sends 64 SYNs from the client namespace (a new source port each) at 1 ms intervals; the client's RSTs to the SYN-ACKs are dropped in the client: 64 server SYN-RECV, each SYN-ACK retransmitted once, conntrack SYN_RECV.", (*Lab).SYNFlood},
	{"rst-abort", "The client closes with SO_LINGER 0 (RST) after a request and answer: no sockets on either side, conntrack CLOSE.", (*Lab).RSTAbort},
	{"lossy-transfer", "The client sends 400 KiB while the server's INPUT chain drops every 20th client data segment; then the client closes first: client retransmissions, client TIME-WAIT, conntrack TIME_WAIT.", (*Lab).LossyTransfer},
	{"simultaneous-close", "Both sides close at once; the router holds both FINs (NFQUEUE) until it has both, then lets them cross, and holds the two ACKs they elicit until ss shows both sides in CLOSING: both end in TIME-WAIT.", (*Lab).SimultaneousClose},
	{"simultaneous-closing", "As simultaneous-close, but each endpoint drops the pure ACKs it receives, and the capture ends with both sides in CLOSING (conntrack, which saw the ACKs, in TIME_WAIT).", (*Lab).SimultaneousClosing},
	{"mid-stream", "The capture starts after the handshake and 10 KiB each way; 10 KiB more each way follow: both ESTABLISHED, no SYN in the capture.", (*Lab).MidStream},
	{"ipv6", "Handshake, request and answer, client closes first, over IPv6: client TIME-WAIT, server CLOSED, conntrack TIME_WAIT.", (*Lab).IPv6},
	{"time-wait-pileup", "200 short connections, each closed first by the client: 200 client TIME-WAIT, server none, 200 conntrack TIME_WAIT.", (*Lab).TimeWaitPileup},
}

// ServerAddr is the scenarios' service address: the server's IPv4 (or
// IPv6) address and ServicePort.
func ServerAddr(v6 bool) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(ServerIP6, ServicePort)
	}
	return netip.AddrPortFrom(ServerIP, ServicePort)
}

// Pair listens on the server, connects from the client, and returns both
// ends of the connection.
func (l *Lab) Pair(t testing.TB, v6 bool) (client, server *net.TCPConn) {
	t.Helper()
	ln := l.Listen(t, Server, ServerAddr(v6))
	c, err := l.Dial(t, Client, ServerAddr(v6))
	if err != nil {
		t.Fatalf("dial %s: %v", ServerAddr(v6), err)
	}
	s := Accept(t, ln)
	ln.Close()
	return c, s
}

// Transfer sends n bytes of a fixed pattern from one end to the other,
// reads them at the other end, and checks they arrived unchanged.
func Transfer(t testing.TB, from, to net.Conn, n int) {
	t.Helper()
	data := pattern(n)
	errc := make(chan error, 1)
	from.SetWriteDeadline(time.Now().Add(IOTimeout))
	go func() {
		_, err := from.Write(data)
		errc <- err
	}()
	to.SetReadDeadline(time.Now().Add(IOTimeout))
	got := make([]byte, n)
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing %d bytes: %v", n, err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("%d bytes arrived changed", n)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// ReadEOF reads from c until EOF, bounded by IOTimeout.
func ReadEOF(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(IOTimeout))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("reading to EOF: %v", err)
	}
}

// Finish reads the kernel's view (ss in both endpoints, conntrack in the
// router, both retransmission counters, all at once), then stops the
// capture, and returns them with want.
func (l *Lab) Finish(t testing.TB, name string, stop func() string, want Want) Result {
	t.Helper()
	r := Result{Name: name, CaptureDev: l.CaptureDev, Want: want}
	var wg sync.WaitGroup
	errs := make([]error, 5)
	r.Taken = time.Now()
	wg.Add(5)
	go func() { defer wg.Done(); r.Client, errs[0] = l.ss(Client) }()
	go func() { defer wg.Done(); r.Server, errs[1] = l.ss(Server) }()
	go func() { defer wg.Done(); r.Conntrack, errs[2] = l.conntrack() }()
	go func() { defer wg.Done(); r.RetransClient, errs[3] = l.retrans(Client) }()
	go func() { defer wg.Done(); r.RetransServer, errs[4] = l.retrans(Server) }()
	wg.Wait()
	r.TakenEnd = time.Now()
	r.Pcap = stop()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return r
}

// count returns a condition that holds when socks has exactly n
// non-listening sockets in state s and no others.
func only(want map[tcp.State]int) func([]Socket) bool {
	return func(socks []Socket) bool {
		got := CountStates(socks)
		for _, k := range unionKeys(got, want) {
			if got[k] != want[k] {
				return false
			}
		}
		return true
	}
}

func describe(m map[tcp.State]int) string {
	if len(m) == 0 {
		return "no sockets"
	}
	return formatCounts(m)
}

// settle waits until both sides show exactly the wanted sockets.
func (l *Lab) settle(t testing.TB, want Want) {
	t.Helper()
	l.WaitFor(t, Client, describe(want.Client), only(want.Client))
	l.WaitFor(t, Server, describe(want.Server), only(want.Server))
}

// Handshake: see Scenarios.
func (l *Lab) Handshake(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	Transfer(t, c, s, 100)
	Transfer(t, s, c, 100)
	want := Want{
		Client:        map[tcp.State]int{tcp.Established: 1},
		Server:        map[tcp.State]int{tcp.Established: 1},
		Conntrack:     map[string]int{"ESTABLISHED": 1},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "handshake", stop, want)
}

// closeBy runs a request and answer and then an orderly close begun by
// the client (clientFirst) or the server, over IPv4 or IPv6.
func (l *Lab) closeBy(t testing.TB, name string, clientFirst, v6 bool) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, v6)
	Transfer(t, c, s, 100)
	Transfer(t, s, c, 100)
	first, second := net.Conn(c), net.Conn(s)
	want := Want{
		Client:        map[tcp.State]int{tcp.TimeWait: 1},
		Server:        map[tcp.State]int{},
		Conntrack:     map[string]int{"TIME_WAIT": 1},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	if !clientFirst {
		first, second = second, first
		want.Client, want.Server = want.Server, want.Client
	}
	first.Close()
	ReadEOF(t, second)
	second.Close()
	l.settle(t, want)
	return l.Finish(t, name, stop, want)
}

// ClientClose: see Scenarios.
func (l *Lab) ClientClose(t testing.TB) Result { return l.closeBy(t, "client-close", true, false) }

// ServerClose: see Scenarios.
func (l *Lab) ServerClose(t testing.TB) Result { return l.closeBy(t, "server-close", false, false) }

// IPv6: see Scenarios.
func (l *Lab) IPv6(t testing.TB) Result { return l.closeBy(t, "ipv6", true, true) }

// HalfClose: see Scenarios.
func (l *Lab) HalfClose(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	Transfer(t, c, s, 100)
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("shutdown(SHUT_WR): %v", err)
	}
	ReadEOF(t, s)
	// Data still flows the other way after the client's FIN (RFC 9293
	// section 3.6: a half-closed connection still carries data toward
	// the side that closed).
	Transfer(t, s, c, 64<<10)
	want := Want{
		Client:        map[tcp.State]int{tcp.FinWait2: 1},
		Server:        map[tcp.State]int{tcp.CloseWait: 1},
		Conntrack:     map[string]int{"CLOSE_WAIT": 1},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "half-close", stop, want)
}

// CloseWaitLeak: see Scenarios.
func (l *Lab) CloseWaitLeak(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	Transfer(t, c, s, 100)
	Transfer(t, s, c, 100)
	c.Close()
	ReadEOF(t, s) // the application sees EOF and never closes s
	want := Want{
		Client:        map[tcp.State]int{tcp.FinWait2: 1},
		Server:        map[tcp.State]int{tcp.CloseWait: 1},
		Conntrack:     map[string]int{"CLOSE_WAIT": 1},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "close-wait-leak", stop, want)
}

// ackRule matches pure ACKs (no data, no other flag) from the client to
// the service port.
func ackRule(extra ...string) []string {
	return append([]string{"-p", "tcp", "-s", ClientIP.String(), "-d", ServerIP.String(),
		"--dport", strconv.Itoa(ServicePort), "--tcp-flags", "ALL", "ACK",
		"-m", "length", "--length", "0:100"}, extra...)
}

// LostFinalACK: see Scenarios.
func (l *Lab) LostFinalACK(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	// No data is exchanged, so the client's next pure ACK after the
	// handshake is its last one, answering the server's FIN. The quota
	// match (xt_quota) lets the rule match only while the bytes it has
	// matched stay within 100: exactly one ACK of 52 bytes.
	l.Rule(t, Server, false, "INPUT", ackRule("-m", "quota", "--quota", "100", "-j", "DROP")...)
	c.Close()
	ReadEOF(t, s)
	s.Close()
	// The server in LAST-ACK retransmits its FIN after its RTO (RFC 9293
	// section 3.8.1, RFC 6298); the client in TIME-WAIT acknowledges the
	// retransmitted FIN and restarts its 2MSL timer (RFC 9293 section
	// 3.10.7.4, "TIME-WAIT STATE"), and this time the ACK passes.
	want := Want{
		Client:        map[tcp.State]int{tcp.TimeWait: 1},
		Server:        map[tcp.State]int{},
		Conntrack:     map[string]int{"TIME_WAIT": 1},
		RetransServer: Exactly(1),
		SYNs:          1,
		RetransClient: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "lost-final-ack", stop, want)
}

// LastAck: see Scenarios.
func (l *Lab) LastAck(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	l.Rule(t, Server, false, "INPUT", ackRule("-j", "DROP")...)
	c.Close()
	ReadEOF(t, s)
	s.Close()
	want := Want{
		Client: map[tcp.State]int{tcp.TimeWait: 1},
		Server: map[tcp.State]int{tcp.LastAck: 1},
		// The router's conntrack saw the client's ACK (it is dropped
		// only at the server), so it has moved on to TIME_WAIT.
		Conntrack: map[string]int{"TIME_WAIT": 1},
		// The capture ends as soon as the first retransmission is
		// seen; the second comes an RTO later (at least 400 ms).
		RetransServer: Range{1, 2},
		SYNs:          1,
		RetransClient: Few,
	}
	l.settle(t, want)
	deadline := time.Now().Add(WaitTimeout)
	for l.Retrans(t, Server) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not retransmit its FIN within %v", WaitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return l.Finish(t, "last-ack", stop, want)
}

// RefusedPort is the port the refused scenario connects to: nothing
// listens there.
const RefusedPort = 5001

// Refused: see Scenarios.
func (l *Lab) Refused(t testing.TB) Result {
	stop := l.StartCapture(t)
	_, err := l.Dial(t, Client, netip.AddrPortFrom(ServerIP, RefusedPort))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: got %v, want connection refused", err)
	}
	want := Want{
		Client: map[tcp.State]int{},
		Server: map[tcp.State]int{},
		// A RST answering the very first SYN makes conntrack delete the
		// entry at once rather than keep it in CLOSE ("if only reply is
		// a RST", net/netfilter/nf_conntrack_proto_tcp.c, nf_conntrack_tcp_packet).
		Conntrack:     map[string]int{},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	return l.Finish(t, "refused", stop, want)
}

// FloodSYNs is the number of SYNs the syn-flood scenario sends.
const FloodSYNs = 64

// SYNFlood: see Scenarios.
func (l *Lab) SYNFlood(t testing.TB) Result {
	requireTool(t, "hping3")
	l.Listen(t, Server, ServerAddr(false))
	// hping3's SYNs come from a raw socket, so the client's kernel has no
	// connection for the SYN-ACKs and would answer each with RST
	// (RFC 9293 section 3.10.7.1), ending the server's SYN-RECV; the
	// client drops its own RSTs so the half-open connections stay.
	l.Rule(t, Client, false, "OUTPUT", "-p", "tcp", "-d", ServerIP.String(),
		"--dport", strconv.Itoa(ServicePort), "--tcp-flags", "RST", "RST", "-j", "DROP")
	stop := l.StartCapture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := l.Client.Command(ctx, "hping3", "-q", "-S", "-p", strconv.Itoa(ServicePort),
		"-c", strconv.Itoa(FloodSYNs), "-i", "u1000", ServerIP.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	// hping3 exits non-zero when it got no answer it counts; the
	// capture and the server's sockets are the check, not its status.
	if err := cmd.Run(); ctx.Err() != nil {
		t.Fatalf("hping3: %v (%v): %s", ctx.Err(), err, out.String())
	}
	want := Want{
		Client:    map[tcp.State]int{},
		Server:    map[tcp.State]int{tcp.SynReceived: FloodSYNs},
		Conntrack: map[string]int{"SYN_RECV": FloodSYNs},
		// Each SYN-ACK is retransmitted after the initial 1 s RTO
		// (RFC 6298 section 2.1; net/ipv4/tcp_timer.c, tcp_syn_ack_timeout
		// path); the second retransmission is 2 s after the first.
		RetransServer: Exactly(FloodSYNs),
		SYNs:          FloodSYNs,
		RetransClient: Few,
	}
	l.WaitFor(t, Server, describe(want.Server), only(want.Server))
	deadline := time.Now().Add(WaitTimeout)
	for l.Retrans(t, Server) < FloodSYNs {
		if time.Now().After(deadline) {
			t.Fatalf("the server retransmitted %d SYN-ACKs within %v, want %d", l.Retrans(t, Server), WaitTimeout, FloodSYNs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return l.Finish(t, "syn-flood", stop, want)
}

// RSTAbort: see Scenarios.
func (l *Lab) RSTAbort(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	Transfer(t, c, s, 100)
	Transfer(t, s, c, 100)
	// SO_LINGER with a zero timeout makes close() abort the connection
	// with RST instead of a FIN (RFC 9293 section 3.10.5, ABORT call).
	if err := c.SetLinger(0); err != nil {
		t.Fatalf("SO_LINGER: %v", err)
	}
	c.Close()
	s.SetReadDeadline(time.Now().Add(IOTimeout))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server read after the client's RST: got %v, want connection reset", err)
	}
	want := Want{
		Client:        map[tcp.State]int{},
		Server:        map[tcp.State]int{},
		Conntrack:     map[string]int{"CLOSE": 1},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "rst-abort", stop, want)
}

// LossyBytes is what the lossy-transfer scenario sends.
const LossyBytes = 400 << 10

// LossyTransfer: see Scenarios.
func (l *Lab) LossyTransfer(t testing.TB) Result {
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	// Every 20th client segment longer than 200 bytes (data) is dropped:
	// a 5% loss that is deterministic, so the run always has losses.
	l.Rule(t, Server, false, "INPUT", "-p", "tcp", "-s", ClientIP.String(), "-d", ServerIP.String(),
		"--dport", strconv.Itoa(ServicePort), "-m", "length", "--length", "200:65535",
		"-m", "statistic", "--mode", "nth", "--every", "20", "--packet", "0", "-j", "DROP")
	Transfer(t, c, s, LossyBytes)
	c.Close()
	ReadEOF(t, s)
	s.Close()
	want := Want{
		Client:        map[tcp.State]int{tcp.TimeWait: 1},
		Server:        map[tcp.State]int{},
		Conntrack:     map[string]int{"TIME_WAIT": 1},
		RetransClient: AtLeast(1),
		SYNs:          1,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "lossy-transfer", stop, want)
}

// nfQueue is the NFQUEUE number the simultaneous close scenarios use.
const nfQueue = 7

// simultaneous closes both ends at once with both FINs in flight
// together, so each side receives the other's FIN while its own is still
// unacknowledged: FIN-WAIT-1 to CLOSING on both sides (RFC 9293 section
// 3.6, Figure 13). With holdACKs the ACKs of the FINs are dropped and
// both stay in CLOSING.
func (l *Lab) simultaneous(t testing.TB, name string, holdACKs bool) Result {
	// The router holds segments for a while (and ss is polled
	// meanwhile); a minimum RTO of 2 s keeps the endpoints from
	// retransmitting their FINs in that time, on a loaded machine too.
	l.RTOMin(t, 2*time.Second)
	stop := l.StartCapture(t)
	c, s := l.Pair(t, false)
	h, err := l.newHolder(nfQueue)
	if err != nil {
		t.Fatalf("nfqueue: %v", err)
	}
	t.Cleanup(h.close)
	port := strconv.Itoa(ServicePort)
	l.Rule(t, Router, false, "FORWARD", "-p", "tcp", "-m", "multiport", "--ports", port,
		"-m", "tcp", "--tcp-flags", "FIN", "FIN", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(nfQueue))
	if holdACKs {
		l.Rule(t, Server, false, "INPUT", "-p", "tcp", "--dport", port, "--tcp-flags", "ALL", "ACK", "-j", "DROP")
		l.Rule(t, Client, false, "INPUT", "-p", "tcp", "--sport", port, "--tcp-flags", "ALL", "ACK", "-j", "DROP")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.Close() }()
	go func() { defer wg.Done(); s.Close() }()
	wg.Wait()
	fins, err := h.collect(2, WaitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !holdACKs {
		// Each side answers the other's FIN with an ACK. Were it let
		// through at once, the first side's ACK could reach the other
		// side before the second FIN did (the verdicts are separate
		// system calls), and that side would go FIN-WAIT-2 instead of
		// CLOSING. So the router holds those ACKs too until both sides
		// are seen in CLOSING.
		l.Rule(t, Router, false, "FORWARD", "-p", "tcp", "-m", "multiport", "--ports", port,
			"-m", "tcp", "--tcp-flags", "ALL", "ACK", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(nfQueue))
	}
	if err := h.release(fins); err != nil {
		t.Fatal(err)
	}
	if !holdACKs {
		acks, err := h.collect(2, WaitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		closing := map[tcp.State]int{tcp.Closing: 1}
		l.WaitFor(t, Client, "CLOSING", only(closing))
		l.WaitFor(t, Server, "CLOSING", only(closing))
		if err := h.release(acks); err != nil {
			t.Fatal(err)
		}
	}
	want := Want{
		Client:        map[tcp.State]int{tcp.TimeWait: 1},
		Server:        map[tcp.State]int{tcp.TimeWait: 1},
		Conntrack:     map[string]int{"TIME_WAIT": 1},
		SYNs:          1,
		RetransClient: Few,
		RetransServer: Few,
	}
	if holdACKs {
		want.Client = map[tcp.State]int{tcp.Closing: 1}
		want.Server = map[tcp.State]int{tcp.Closing: 1}
		// The ACKs cross the router before the endpoints drop them,
		// so conntrack has seen the close complete.
		want.Conntrack = map[string]int{"TIME_WAIT": 1}
	}
	l.settle(t, want)
	return l.Finish(t, name, stop, want)
}

// SimultaneousClose: see Scenarios.
func (l *Lab) SimultaneousClose(t testing.TB) Result {
	return l.simultaneous(t, "simultaneous-close", false)
}

// SimultaneousClosing: see Scenarios.
func (l *Lab) SimultaneousClosing(t testing.TB) Result {
	return l.simultaneous(t, "simultaneous-closing", true)
}

// MidStream: see Scenarios.
func (l *Lab) MidStream(t testing.TB) Result {
	c, s := l.Pair(t, false)
	Transfer(t, c, s, 10<<10)
	Transfer(t, s, c, 10<<10)
	stop := l.StartCapture(t)
	Transfer(t, c, s, 10<<10)
	Transfer(t, s, c, 10<<10)
	want := Want{
		Client:        map[tcp.State]int{tcp.Established: 1},
		Server:        map[tcp.State]int{tcp.Established: 1},
		Conntrack:     map[string]int{"ESTABLISHED": 1},
		SYNs:          0,
		RetransClient: Few,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "mid-stream", stop, want)
}

// PileupConns is the number of connections time-wait-pileup makes.
const PileupConns = 200

// TimeWaitPileup: see Scenarios.
func (l *Lab) TimeWaitPileup(t testing.TB) Result {
	stop := l.StartCapture(t)
	ln := l.Listen(t, Server, ServerAddr(false))
	served := make(chan error, 1)
	go func() {
		for range PileupConns {
			ln.SetDeadline(time.Now().Add(IOTimeout))
			c, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			c.SetDeadline(time.Now().Add(IOTimeout))
			_, err = io.Copy(io.Discard, c)
			c.Close()
			if err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()
	err := l.Client.Do(func() error {
		d := net.Dialer{Timeout: IOTimeout}
		for i := range PileupConns {
			c, err := d.Dial("tcp", ServerAddr(false).String())
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			_, err = c.Write([]byte("x"))
			c.Close()
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("server: %v", err)
	}
	want := Want{
		Client:        map[tcp.State]int{tcp.TimeWait: PileupConns},
		Server:        map[tcp.State]int{},
		Conntrack:     map[string]int{"TIME_WAIT": PileupConns},
		SYNs:          PileupConns,
		RetransClient: Few,
		RetransServer: Few,
	}
	l.settle(t, want)
	return l.Finish(t, "time-wait-pileup", stop, want)
}
