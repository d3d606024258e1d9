//go:build linux

package interop

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/link/tun"
	"github.com/tcpstate/tcpstate/seqnum"
)

// impairment says what a relay does to the packets it carries, each way:
// the fraction it drops, the fraction it holds back until 1 to 3 later
// packets have passed (or holdMax has gone by), and the fraction it sends
// twice.
type impairment struct {
	loss, reorder, dup float64
}

// holdMax bounds how long the relay holds a packet back for reordering
// when no later packet comes to overtake it.
const holdMax = 10 * time.Millisecond

// relayStats counts what a relay did, both ways together.
type relayStats struct {
	forwarded, dropped, reordered, duplicated atomic.Int64
}

func (s *relayStats) String() string {
	return fmt.Sprintf("%d forwarded, %d dropped, %d reordered, %d duplicated",
		s.forwarded.Load(), s.dropped.Load(), s.reordered.Load(), s.duplicated.Load())
}

// openTUN attaches to an existing TUN device in ns, and closes it when
// the test ends.
func openTUN(t *testing.T, ns *netns.NS, name string) *tun.Device {
	t.Helper()
	var dev *tun.Device
	if err := ns.Do(func() error {
		var err error
		dev, err = tun.Open(name, tun.Options{NoCreate: true})
		return err
	}); err != nil {
		t.Fatalf("open TUN device %s in %s: %v", name, ns.Name(), err)
	}
	return dev
}

// startRelay carries packets both ways between two TUN devices, impaired
// as imp says with a random sequence from seed, until the test ends.
// What the kernel sends out of one device, the relay writes into the
// other, where that device's kernel receives it. The kernel's side is a,
// the stack's b: mon sees each packet read from b before any impairment,
// and each packet written to b.
func startRelay(t *testing.T, a, b *tun.Device, imp impairment, seed uint64, mon *monitor) *relayStats {
	stats := &relayStats{}
	var wg sync.WaitGroup
	ignore := func([]byte) {}
	for i, dir := range []struct {
		from, to          *tun.Device
		onRead, onWritten func([]byte)
	}{{a, b, ignore, mon.toStack}, {b, a, mon.fromStack, ignore}} {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		pkts := make(chan []byte, 4096)
		wg.Go(func() { readPackets(dir.from, pkts, dir.onRead) })
		wg.Go(func() { forward(dir.to, pkts, imp, rng, stats, dir.onWritten) })
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
		wg.Wait()
		t.Logf("relay: %v", stats)
	})
	return stats
}

// readPackets copies each packet read from dev into pkts, after showing
// it to observe, until dev is closed.
func readPackets(dev *tun.Device, pkts chan<- []byte, observe func([]byte)) {
	defer close(pkts)
	const batch = 64
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 65535)
	}
	for {
		n, err := dev.ReadPackets(bufs, sizes)
		if err != nil {
			return
		}
		for i := range n {
			observe(bufs[i][:sizes[i]])
			pkts <- append([]byte(nil), bufs[i][:sizes[i]]...)
		}
	}
}

// forward writes the packets to dev, impaired, showing each one written
// to written.
func forward(dev *tun.Device, pkts <-chan []byte, imp impairment, rng *rand.Rand, stats *relayStats, written func([]byte)) {
	var (
		held     []byte // the packet held back, if any
		overtake int    // how many more packets pass it before it goes
		timer    = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	send := func(p []byte) {
		// An error is a closed device, or a packet the kernel refuses: a loss.
		if _, err := dev.WritePackets([][]byte{p}); err == nil {
			written(p)
		}
		stats.forwarded.Add(1)
	}
	release := func() {
		if held != nil {
			send(held)
			held = nil
			timer.Stop()
		}
	}
	for {
		select {
		case p, ok := <-pkts:
			if !ok {
				release()
				return
			}
			r := rng.Float64()
			switch {
			case r < imp.loss:
				stats.dropped.Add(1)
				continue
			case r < imp.loss+imp.reorder && held == nil:
				held, overtake = p, 1+rng.IntN(3)
				timer.Reset(holdMax)
				stats.reordered.Add(1)
				continue
			}
			send(p)
			if rng.Float64() < imp.dup {
				send(p)
				stats.duplicated.Add(1)
			}
			if held != nil {
				if overtake--; overtake == 0 {
					release()
				}
			}
		case <-timer.C:
			release()
		}
	}
}

// TestReorder: an 8 MB curl download and a 2 MB echo arrive byte for
// byte through a userspace relay that drops 1% of the packets each way,
// reorders 5% and duplicates 1% (tc netem being unavailable here, and
// iptables unable to reorder).
//
// The kernel peer lives in one namespace, the relay joins its tun0 to
// tunR in a second namespace, which forwards to the tcpstate processes'
// devices there:
//
//	curl, sockets (ns A, 10.9.0.1) ── tun0 ══ relay ══ tunR ── ns B forwards ─┬─ tunH ── serve --app http (10.9.0.2)
//	                                                                          └─ tunE ── serve --app echo (10.9.0.3)
func TestReorder(t *testing.T) {
	need(t, "curl", "curl")
	a := newNS(t, dev0)
	b := netns.ForTest(t)
	const (
		httpAddr = "10.9.0.2"
		echoAddr = "10.9.0.3"
	)
	b.MustRun(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	for dev, route := range map[string]string{"tunR": kernel0, "tunH": httpAddr, "tunE": echoAddr} {
		b.MustRun(t, "ip", "tuntap", "add", "dev", dev, "mode", "tun")
		b.MustRun(t, "ip", "link", "set", dev, "up")
		b.MustRun(t, "ip", "route", "add", route+"/32", "dev", dev)
	}
	startServe(t, b, "tunH", httpAddr+"/24", 80, "http")
	startServe(t, b, "tunE", echoAddr+"/24", 7, "echo")
	mon := newMonitor()
	stats := startRelay(t, openTUN(t, a, dev0), openTUN(t, b, "tunR"),
		impairment{loss: 0.01, reorder: 0.05, dup: 0.01}, 1, mon)
	defer mon.check(t) // also when a transfer fails: it may say why

	impairedTransfers(t, a, httpAddr, echoAddr)
	if stats.dropped.Load() == 0 || stats.reordered.Load() == 0 || stats.duplicated.Load() == 0 {
		t.Errorf("the relay did not impair the transfers: %v", stats)
	}
}

// monitor watches the connections of the stack that the relay carries,
// and checks two things a peer relies on:
//
//   - The stack never shrinks its receive window: the right edge it
//     advertises, SEG.ACK + SEG.WND scaled, never moves left. RFC 9293
//     §3.8.6 (after RFC 1122 §4.2.2.16) says a receiver SHOULD NOT, since
//     the peer may already have sent up to the old edge; Linux never does.
//     Only a segment whose ACK is beyond every ACK seen so far is judged,
//     against the segments seen before it: those were sent before it,
//     whatever order the kernel's forwarding put them in, so a stack that
//     never shrinks its window is never blamed.
//   - The stack does not ignore the kernel's acknowledgments: it does not
//     retransmit data more than ignoredAfter after the relay delivered a
//     pure ACK covering it, at a sequence number the stack must accept —
//     from the last ACK it sent up to and including the right edge it
//     advertised (Linux's own test, tcp_sequence, includes the edge).
//
// The relay shows it each packet the stack sends before impairing it
// (fromStack), and each packet of the kernel's as it delivers it to the
// stack, after impairment (toStack).
type monitor struct {
	mu    sync.Mutex
	conns map[[2]netip.AddrPort]*connWatch // keyed by (stack, kernel)

	shrinks      int
	worstShrink  seqnum.Size
	firstShrink  string
	ignored      int
	firstIgnored string
}

// ignoredAfter is how long after delivering an ACK the monitor takes a
// retransmission of the data it covers as the ACK ignored, rather than
// crossing it on the wire (the round trip here is tens of microseconds).
const ignoredAfter = 150 * time.Millisecond

// connWatch is what the monitor knows of one connection.
type connWatch struct {
	peerScale, ourScale int // window scale offered in each SYN, or -1
	seen                bool
	maxAck, maxEdge     seqnum.Value // the stack's highest ACK and right edge
	kernelAckSet        bool
	kernelAck           seqnum.Value // the highest ACK delivered that the stack must take
	kernelAckAt         time.Time
}

func newMonitor() *monitor {
	return &monitor{conns: make(map[[2]netip.AddrPort]*connWatch)}
}

// parseSegment returns the TCP segment in pkt, or false if there is none.
func parseSegment(pkt []byte) (header.Packet, bool) {
	var p header.Packet
	return p, header.ParsePacket(pkt, &p) == nil
}

// scale returns the window scale a SYN offers, or -1.
func scale(t header.TCP) int {
	var o header.TCPOptions
	if t.Options(&o) != nil || !o.HasWindowScale {
		return -1
	}
	return int(min(o.WindowScale, 14))
}

// toStack sees a segment of the kernel's as the relay delivers it.
func (m *monitor) toStack(pkt []byte) {
	p, ok := parseSegment(pkt)
	if !ok {
		return
	}
	key := [2]netip.AddrPort{netip.AddrPortFrom(p.Dst, p.TCP.DstPort()), netip.AddrPortFrom(p.Src, p.TCP.SrcPort())}
	flags := p.TCP.Flags()
	m.mu.Lock()
	defer m.mu.Unlock()
	if flags&(header.SYN|header.ACK) == header.SYN {
		m.conns[key] = &connWatch{peerScale: scale(p.TCP), ourScale: -1}
		return
	}
	c := m.conns[key]
	if c == nil || !c.seen || flags&(header.SYN|header.FIN|header.RST) != 0 || flags&header.ACK == 0 || len(p.TCP.Payload()) > 0 {
		return
	}
	// A pure ACK: one the stack must take if its sequence number lies
	// from the stack's last ACK to its right edge, inclusive.
	seq, ack := p.TCP.Seq(), p.TCP.Ack()
	if seq.LessThan(c.maxAck) || seq.GreaterThan(c.maxEdge) {
		return
	}
	if !c.kernelAckSet || ack.GreaterThan(c.kernelAck) {
		c.kernelAckSet, c.kernelAck, c.kernelAckAt = true, ack, time.Now()
	}
}

// fromStack sees a segment the stack sent.
func (m *monitor) fromStack(pkt []byte) {
	p, ok := parseSegment(pkt)
	if !ok {
		return
	}
	key := [2]netip.AddrPort{netip.AddrPortFrom(p.Src, p.TCP.SrcPort()), netip.AddrPortFrom(p.Dst, p.TCP.DstPort())}
	flags := p.TCP.Flags()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.conns[key]
	switch {
	case c == nil:
		return // a connection the stack opened, or one whose SYN went unseen
	case flags&header.SYN != 0:
		c.ourScale = scale(p.TCP) // a SYN's own window is never scaled
		return
	case flags&header.RST != 0 || flags&header.ACK == 0:
		return
	}

	// Data the kernel acknowledged long ago, sent again: more than one
	// byte, since a keep-alive or window probe may repeat one.
	seq, n := p.TCP.Seq(), len(p.TCP.Payload())
	if n > 1 && c.kernelAckSet && seq.Add(seqnum.Size(n)).LessThanEq(c.kernelAck) {
		if since := time.Since(c.kernelAckAt); since > ignoredAfter {
			m.ignored++
			if m.firstIgnored == "" {
				m.firstIgnored = fmt.Sprintf("%v -> %v: sent %d bytes at seq %d, %v after the relay delivered the kernel's ACK %d",
					key[0], key[1], n, seq, since.Round(time.Millisecond), c.kernelAck)
			}
		}
	}

	shift := 0
	if c.peerScale >= 0 && c.ourScale >= 0 {
		shift = c.ourScale
	}
	ack := p.TCP.Ack()
	edge := ack.Add(seqnum.Size(uint32(p.TCP.Window()) << shift))
	switch {
	case !c.seen:
		c.seen, c.maxAck, c.maxEdge = true, ack, edge
	case ack.GreaterThan(c.maxAck):
		if edge.LessThan(c.maxEdge) {
			by := edge.Size(c.maxEdge)
			m.shrinks++
			m.worstShrink = max(m.worstShrink, by)
			if m.firstShrink == "" {
				m.firstShrink = fmt.Sprintf("%v -> %v: %v segment with ACK %d, window %d << %d: right edge %d, %d bytes left of the edge %d advertised before",
					key[0], key[1], flags, ack, p.TCP.Window(), shift, edge, by, c.maxEdge)
			}
		}
		c.maxAck = ack
		c.maxEdge = seqnum.Max(c.maxEdge, edge)
	default:
		c.maxEdge = seqnum.Max(c.maxEdge, edge)
	}
}

// check fails t if the stack shrank its window or ignored an ACK.
func (m *monitor) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.conns) == 0 {
		t.Error("the monitor saw no connection")
	}
	if m.shrinks > 0 {
		t.Errorf("the stack shrank its receive window %d times, by up to %d bytes (RFC 9293 §3.8.6: a receiver SHOULD NOT; "+
			"the kernel may already have sent up to the old edge, and the stack then drops the kernel's ACKs there as out of window). First: %s",
			m.shrinks, m.worstShrink, m.firstShrink)
	}
	if m.ignored > 0 {
		t.Errorf("the stack ignored the kernel's ACKs: %d times it retransmitted data that a pure ACK it must accept "+
			"(sequence number from its last ACK to its right edge, inclusive) had covered more than %v before. First: %s",
			m.ignored, ignoredAfter, m.firstIgnored)
	}
}
