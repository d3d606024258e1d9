//go:build linux

package netlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/internal/testenv"
)

// The address plan. Every lab has its own namespaces, so every lab uses
// the same addresses and names.
var (
	ClientIP  = netip.MustParseAddr("10.77.1.2")
	RouterIP1 = netip.MustParseAddr("10.77.1.1") // the router, client side
	RouterIP2 = netip.MustParseAddr("10.77.2.1") // the router, server side
	ServerIP  = netip.MustParseAddr("10.77.2.2")

	ClientIP6  = netip.MustParseAddr("fd77:1::2")
	RouterIP61 = netip.MustParseAddr("fd77:1::1")
	RouterIP62 = netip.MustParseAddr("fd77:2::1")
	ServerIP6  = netip.MustParseAddr("fd77:2::2")
)

// Interface names. Each lives in its own namespace.
const (
	ClientDev       = "eth0"     // in the client namespace, facing the router
	ServerDev       = "eth0"     // in the server namespace, facing the router
	RouterClientDev = "toclient" // in the router namespace, facing the client
	RouterServerDev = "toserver" // in the router namespace, facing the server
)

// The interfaces' MAC addresses, fixed so the lab can fill the
// neighbour tables itself (locally administered: 02:...).
const (
	ClientMAC       = "02:00:0a:4d:01:02"
	RouterClientMAC = "02:00:0a:4d:01:01"
	RouterServerMAC = "02:00:0a:4d:02:01"
	ServerMAC       = "02:00:0a:4d:02:02"
)

// ServicePort is the TCP port the scenarios' server listens on.
const ServicePort = 5000

// Side names, as SS, Retrans and NS take them.
const (
	Client = "client"
	Router = "router"
	Server = "server"
)

// Time limits: every wait in this package is bounded by one of these.
const (
	// WaitTimeout bounds waiting for a kernel state (a socket reaching
	// TIME-WAIT, a capture starting or flushing).
	WaitTimeout = 10 * time.Second
	// IOTimeout bounds each socket read, write and dial.
	IOTimeout = 10 * time.Second
)

// tools the lab needs in every test; hping3 is checked by the SYN flood.
var tools = []string{"ip", "ss", "iptables", "ip6tables", "ethtool", "tcpdump", "conntrack"}

// Lab is one client–router–server network. Make it with New; it is torn
// down when the test ends.
type Lab struct {
	Client, Router, Server *netns.NS

	// CaptureDev is the router interface StartCapture listens on:
	// RouterServerDev unless a scenario changes it before capturing. Both
	// router interfaces carry every client–server packet, except packets
	// the router itself drops (iptables in FORWARD): those appear only on
	// RouterClientDev (client to server) or RouterServerDev (server to
	// client).
	CaptureDev string

	dir string
}

// New builds a lab for t: three namespaces, veth pairs with offloads off,
// IPv4 and IPv6 addresses and routes, forwarding in the router, and a
// conntrack rule there so nf_conntrack tracks the flows. It skips t when
// namespaces or tools are missing, or fails it when CI is "true".
func New(t testing.TB) *Lab {
	t.Helper()
	for _, tool := range tools {
		requireTool(t, tool)
	}
	l := &Lab{CaptureDev: RouterServerDev, dir: t.TempDir()}
	l.Client = netns.ForTest(t)
	l.Router = netns.ForTest(t)
	l.Server = netns.ForTest(t)

	// No duplicate address detection (RFC 4862 section 5.4) on any IPv6
	// address, link-local ones included: while the router's link-local
	// address is tentative it cannot do neighbour discovery, and the
	// first IPv6 packets would wait seconds in its queue. Set before the
	// interfaces exist, so they inherit it.
	for _, ns := range []*netns.NS{l.Client, l.Router, l.Server} {
		ns.MustRun(t, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}

	// The veth pairs are created inside the namespaces (ip -n), so the
	// same names in parallel labs never meet in the root namespace.
	run(t, "ip", "-n", l.Client.Name(), "link", "add", ClientDev, "address", ClientMAC, "type", "veth",
		"peer", "name", RouterClientDev, "address", RouterClientMAC, "netns", l.Router.Name())
	run(t, "ip", "-n", l.Server.Name(), "link", "add", ServerDev, "address", ServerMAC, "type", "veth",
		"peer", "name", RouterServerDev, "address", RouterServerMAC, "netns", l.Router.Name())

	type ifc struct {
		ns   *netns.NS
		dev  string
		v4   string
		v6   string
		peer netip.Addr // default gateway, v4
		gw6  netip.Addr
	}
	for _, c := range []ifc{
		{l.Client, ClientDev, "10.77.1.2/24", "fd77:1::2/64", RouterIP1, RouterIP61},
		{l.Router, RouterClientDev, "10.77.1.1/24", "fd77:1::1/64", netip.Addr{}, netip.Addr{}},
		{l.Router, RouterServerDev, "10.77.2.1/24", "fd77:2::1/64", netip.Addr{}, netip.Addr{}},
		{l.Server, ServerDev, "10.77.2.2/24", "fd77:2::2/64", RouterIP2, RouterIP62},
	} {
		c.ns.MustRun(t, "ip", "addr", "add", c.v4, "dev", c.dev)
		c.ns.MustRun(t, "ip", "-6", "addr", "add", c.v6, "dev", c.dev, "nodad")
		// Offloads off so the capture shows the segments as they are on
		// a wire (no GRO-merged or TSO-sized super-packets) with their
		// checksums filled in (tx off: no CHECKSUM_PARTIAL packets).
		c.ns.MustRun(t, "ethtool", "-K", c.dev, "gro", "off", "gso", "off", "tso", "off", "tx", "off")
		c.ns.MustRun(t, "ip", "link", "set", c.dev, "up")
		if c.peer.IsValid() {
			c.ns.MustRun(t, "ip", "route", "add", "default", "via", c.peer.String())
			c.ns.MustRun(t, "ip", "-6", "route", "add", "default", "via", c.gw6.String())
		}
	}
	// Permanent neighbour entries: no ARP or neighbour discovery ever
	// delays a first packet (the first IPv6 neighbour solicitation on a
	// fresh veth is often lost, costing a 1 s retransmission) or adds
	// packets to the capture.
	for _, n := range []struct {
		ns       *netns.NS
		dev, mac string
		addrs    []netip.Addr
	}{
		{l.Client, ClientDev, RouterClientMAC, []netip.Addr{RouterIP1, RouterIP61}},
		{l.Router, RouterClientDev, ClientMAC, []netip.Addr{ClientIP, ClientIP6}},
		{l.Router, RouterServerDev, ServerMAC, []netip.Addr{ServerIP, ServerIP6}},
		{l.Server, ServerDev, RouterServerMAC, []netip.Addr{RouterIP2, RouterIP62}},
	} {
		for _, a := range n.addrs {
			n.ns.MustRun(t, "ip", "neigh", "replace", a.String(), "lladdr", n.mac, "dev", n.dev, "nud", "permanent")
		}
	}
	l.Router.MustRun(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.Router.MustRun(t, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	// A rule that uses conntrack makes nf_conntrack track the namespace's
	// flows (it is registered per namespace on first use); it accepts
	// every packet, INVALID ones included, so the router never changes
	// what the endpoints see unless a scenario adds a rule before it.
	for _, ipt := range []string{"iptables", "ip6tables"} {
		l.Router.MustRun(t, ipt, "-A", "FORWARD", "-m", "conntrack",
			"--ctstate", "INVALID,NEW,ESTABLISHED,RELATED,UNTRACKED", "-j", "ACCEPT")
	}
	if _, err := l.Router.Run("conntrack", "-L"); err != nil {
		t.Fatalf("conntrack -L in the router: %v", err)
	}
	return l
}

// requireTool skips t (fails it with CI=true) when tool is not installed.
func requireTool(t testing.TB, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		testenv.Unavailable(t, "netlab needs %s, which is not installed", tool)
	}
}

// run runs a command in the root namespace, bounded by netns.RunTimeout.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), netns.RunTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NS returns the namespace of a side: Client, Router or Server.
func (l *Lab) NS(side string) *netns.NS {
	switch side {
	case Client:
		return l.Client
	case Router:
		return l.Router
	case Server:
		return l.Server
	}
	panic("netlab: unknown side " + strconv.Quote(side))
}

// Sysctl sets a sysctl (such as net.ipv4.tcp_fin_timeout) in one side's
// namespace. Most TCP sysctls are per namespace, so this changes nothing
// outside the lab.
func (l *Lab) Sysctl(t testing.TB, side, key, value string) {
	t.Helper()
	l.NS(side).MustRun(t, "sysctl", "-qw", key+"="+value)
}

// Rule inserts an iptables rule (ip6tables when v6) at the head of chain
// in one side's namespace, ahead of the lab's accept-all rule, and returns
// a function that deletes it again. args are the rule's match and target,
// as after "iptables -I CHAIN 1".
func (l *Lab) Rule(t testing.TB, side string, v6 bool, chain string, args ...string) (remove func()) {
	t.Helper()
	ipt := "iptables"
	if v6 {
		ipt = "ip6tables"
	}
	ns := l.NS(side)
	ns.MustRun(t, ipt, append([]string{"-w", "-I", chain, "1"}, args...)...)
	var once sync.Once
	return func() {
		once.Do(func() {
			ns.MustRun(t, ipt, append([]string{"-w", "-D", chain}, args...)...)
		})
	}
}

// RTOMin sets the minimum retransmission timeout on the client's and the
// server's default routes (IPv4 and IPv6), as `ip route ... rto_min`
// does (RTAX_RTO_MIN; Linux's default is 200 ms, net/tcp.h TCP_RTO_MIN).
// Connections made afterwards, and existing ones, use it.
func (l *Lab) RTOMin(t testing.TB, d time.Duration) {
	t.Helper()
	ms := strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	for _, r := range []struct {
		ns      *netns.NS
		gw, gw6 netip.Addr
	}{{l.Client, RouterIP1, RouterIP61}, {l.Server, RouterIP2, RouterIP62}} {
		r.ns.MustRun(t, "ip", "route", "replace", "default", "via", r.gw.String(), "rto_min", ms)
		r.ns.MustRun(t, "ip", "-6", "route", "replace", "default", "via", r.gw6.String(), "rto_min", ms)
	}
}

// Listen opens a TCP listener in one side's namespace and closes it when t
// ends.
func (l *Lab) Listen(t testing.TB, side string, addr netip.AddrPort) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := l.NS(side).Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in the %s: %v", addr, side, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// Dial connects from one side's namespace to addr, bounded by IOTimeout,
// and closes the connection when t ends (if the scenario has not).
func (l *Lab) Dial(t testing.TB, side string, addr netip.AddrPort) (*net.TCPConn, error) {
	t.Helper()
	var c net.Conn
	err := l.NS(side).Do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: IOTimeout}).Dial("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), nil
}

// Accept accepts one connection on ln, bounded by IOTimeout, and closes it
// when t ends (if the scenario has not).
func Accept(t testing.TB, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(IOTimeout))
	c, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Capture is a running tcpdump in the router.
type capture struct {
	cmd    *exec.Cmd
	path   string
	stderr *lineBuffer
	cancel context.CancelFunc
	done   chan error
}

// lineBuffer collects a command's output and says when a line appears.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var droppedRE = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// StartCapture starts tcpdump on the router's CaptureDev, writing a pcap
// file (Ethernet link type) with every packet written out as it arrives
// (-U). It returns once tcpdump is listening. stop ends the capture and
// returns the file's path; before it stops tcpdump it sends a marker UDP
// datagram from the router to the server's port 9 and waits until the
// marker is in the file, so every packet that crossed the interface
// before stop was called is in the file. The marker (and the server's
// ICMP port-unreachable answer to it) are the capture's last packets;
// a TCP tracker ignores them. The file is in the test's temporary
// directory, or in the directory NETLAB_KEEP names (to keep it for
// inspection). stop fails t if the kernel dropped packets
// before tcpdump read them, since the capture would then be incomplete.
func (l *Lab) StartCapture(t testing.TB) (stop func() string) {
	t.Helper()
	dir := l.dir
	if keep := os.Getenv("NETLAB_KEEP"); keep != "" {
		dir = keep
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.pcap", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	// -Z root: Debian's tcpdump otherwise drops to the tcpdump user and
	// cannot write into the test's private directory. -B: a 4 MiB kernel
	// buffer so bursts (the SYN flood, the transfers) are not dropped.
	cmd := l.Router.Command(ctx, "tcpdump", "-i", l.CaptureDev, "-w", path, "-U", "--immediate-mode", "-n",
		"-Z", "root", "-B", "4096", "-s", "262144")
	c := &capture{cmd: cmd, path: path, stderr: &lineBuffer{}, cancel: cancel, done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting tcpdump: %v", err)
	}
	go func() { c.done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-c.done
		}
		cancel()
	})
	deadline := time.Now().Add(WaitTimeout)
	for !strings.Contains(c.stderr.String(), "listening on") {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("tcpdump ended before it listened: %v: %s", err, c.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start listening within %v: %s", WaitTimeout, c.stderr.String())
		}
	}
	var once sync.Once
	return func() string {
		t.Helper()
		once.Do(func() {
			stopped = true
			l.flushCapture(t, path)
			cmd.Process.Signal(syscall.SIGINT)
			select {
			case err := <-c.done:
				if err != nil {
					t.Errorf("tcpdump: %v: %s", err, c.stderr.String())
				}
			case <-time.After(WaitTimeout):
				cmd.Process.Kill()
				<-c.done
				t.Errorf("tcpdump did not stop on SIGINT within %v", WaitTimeout)
			}
			if m := droppedRE.FindStringSubmatch(c.stderr.String()); m != nil && m[1] != "0" {
				t.Errorf("the capture is incomplete: tcpdump says %s", m[0])
			}
		})
		return path
	}
}

// flushCapture sends a marker datagram across the capture interface and
// waits until tcpdump has written it to path.
func (l *Lab) flushCapture(t testing.TB, path string) {
	t.Helper()
	var nonce [8]byte
	rand.Read(nonce[:])
	marker := []byte("netlab-capture-end-" + hex.EncodeToString(nonce[:]))
	var conn net.Conn
	// The marker goes from the router to the server side or the client
	// side, whichever the capture interface faces.
	dst := netip.AddrPortFrom(ServerIP, 9)
	if l.CaptureDev == RouterClientDev {
		dst = netip.AddrPortFrom(ClientIP, 9)
	}
	if err := l.Router.Do(func() error {
		var err error
		conn, err = net.Dial("udp", dst.String())
		return err
	}); err != nil {
		t.Fatalf("capture marker socket: %v", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(WaitTimeout)
	for {
		conn.Write(marker)
		for range 10 {
			time.Sleep(10 * time.Millisecond)
			if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, marker) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the capture marker did not reach %s within %v", path, WaitTimeout)
		}
	}
}

// runLines runs a command in a namespace and returns its standard output
// split in lines (standard error is not mixed in, unlike netns.Run).
func runLines(ns *netns.NS, name string, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), netns.RunTimeout)
	defer cancel()
	cmd := ns.Command(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// SS returns the TCP sockets of one side (Client or Server) as
// `ss -tanoiH` shows them: listeners, connections, SYN-RECV requests and
// TIME-WAIT sockets.
func (l *Lab) SS(t testing.TB, side string) []Socket {
	t.Helper()
	socks, err := l.ss(side)
	if err != nil {
		t.Fatal(err)
	}
	return socks
}

func (l *Lab) ss(side string) ([]Socket, error) {
	lines, err := runLines(l.NS(side), "ss", "-tanoiH")
	if err != nil {
		return nil, fmt.Errorf("ss in the %s: %v", side, err)
	}
	socks, err := ParseSS(strings.Join(lines, "\n"))
	if err != nil {
		return nil, fmt.Errorf("ss in the %s: %v", side, err)
	}
	return socks, nil
}

// Conntrack returns the router's conntrack entries for TCP, IPv4 and
// IPv6.
func (l *Lab) Conntrack(t testing.TB) []CTEntry {
	t.Helper()
	all, err := l.conntrack()
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func (l *Lab) conntrack() ([]CTEntry, error) {
	var all []CTEntry
	for _, family := range []string{"ipv4", "ipv6"} {
		lines, err := runLines(l.Router, "conntrack", "-L", "-p", "tcp", "-f", family)
		if err != nil {
			return nil, fmt.Errorf("conntrack in the router: %v", err)
		}
		entries, err := ParseConntrack(strings.Join(lines, "\n"))
		if err != nil {
			return nil, fmt.Errorf("conntrack in the router: %v", err)
		}
		all = append(all, entries...)
	}
	return all, nil
}

// Retrans returns the TCP segments one side's kernel has retransmitted
// since the lab was made (TcpRetransSegs of its namespace, as nstat names
// it; read from /proc/net/snmp, which is per namespace).
func (l *Lab) Retrans(t testing.TB, side string) uint64 {
	t.Helper()
	n, err := l.retrans(side)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (l *Lab) retrans(side string) (uint64, error) {
	text, err := l.NS(side).Run("cat", "/proc/net/snmp")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/net/snmp in the %s: %v", side, err)
	}
	n, err := ParseSNMPRetrans(text)
	if err != nil {
		return 0, fmt.Errorf("the %s: %v", side, err)
	}
	return n, nil
}

// WaitFor polls one side's sockets until cond accepts them, at most
// WaitTimeout, and fails t with the last sockets seen if it never does.
func (l *Lab) WaitFor(t testing.TB, side, what string, cond func([]Socket) bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for {
		socks := l.SS(t, side)
		if cond(socks) {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, s := range socks {
				b.WriteString("\n  " + s.String())
			}
			t.Fatalf("the %s never reached %s within %v; it has:%s", side, what, WaitTimeout, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
