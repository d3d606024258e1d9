// Package stack is the runtime that drives tcp.Conns over a link: it reads
// packets from a link.Endpoint, finds the connection each belongs to (or
// the listener, or answers with RST), feeds it to the connection's state
// machine, writes what the machine sends, runs every connection's timers
// from one queue, and gives Go programs net.Conn and net.Listener.
//
// Data flows one way: link → header → stack → tcp for what arrives, and
// tcp → stack → header → link for what leaves. The only call from tcp back
// into the stack is tcp.Output, which turns a segment into a packet.
//
// A Stack has one goroutine that reads the link and one that runs timers;
// applications' calls run on their own goroutines. Each connection has a
// lock of its own; the tables are behind a read-write lock taken briefly
// per packet.
package stack

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// Options configures a Stack. The zero value of each field means its
// default.
type Options struct {
	// Addrs are the stack's own addresses, with the prefix of the network
	// each is on. A stack answers only packets addressed to these.
	Addrs []netip.Prefix

	// TCP is the configuration every connection starts from. Its MSS,
	// when zero, is derived from the link's MTU.
	TCP tcp.Config

	// Backlog is the default length of a listener's SYN and accept queues.
	// Default 128.
	Backlog int

	// NoSynCookies turns off SYN cookies (RFC 4987 §3.6), which a
	// listener otherwise answers with once its SYN queue is full.
	NoSynCookies bool

	// EphemeralPorts is the range local ports for Dial come from.
	// Default 32768–60999, as Linux.
	EphemeralPorts [2]uint16

	// TTL is the IPv4 TTL and IPv6 hop limit of packets sent. Default 64.
	TTL uint8

	// FinWait2Timeout is how long a connection the application has closed
	// may wait in FIN-WAIT-2 for the peer's FIN before it is dropped.
	// Default 60 s (Linux's net.ipv4.tcp_fin_timeout).
	FinWait2Timeout time.Duration

	// Logf, if set, receives a line for unusual events (a link error, a
	// fallback).
	Logf func(format string, args ...any)
}

// Stats counts what a Stack has seen. Read it with Stack.Stats.
type Stats struct {
	InPackets, OutPackets uint64
	InSegs, OutSegs       uint64 // TCP segments (RFC 4022 tcpInSegs, tcpOutSegs)
	OutRsts               uint64 // RSTs sent
	ActiveOpens           uint64
	PassiveOpens          uint64
	DropMalformed         uint64 // bad IP or TCP header
	DropBadChecksum       uint64 // IPv4 header, TCP or ICMP checksum wrong
	DropNotOurs           uint64 // addressed to another host
	DropNoListener        uint64 // segment for no connection (answered with RST)
	DropListenOverflow    uint64 // accept queue full
	SynCookiesSent        uint64
	SynCookiesValid       uint64
	SynCookiesInvalid     uint64
	ICMPEchoReplies       uint64
	ICMPErrors            uint64
	WriteErrors           uint64

	// RFC 4022's tcpAttemptFails, tcpEstabResets, tcpRetransSegs and
	// tcpInErrs (DropBadChecksum plus DropMalformed).
	AttemptFails, EstabResets, RetransSegs, InErrs uint64
	// DupAcks counts duplicate ACKs received (RFC 5681 §2).
	DupAcks uint64
	// ConnDrops counts the segments connections discarded, by reason
	// (outside the window, old timestamp, unacceptable RST, ...).
	ConnDrops map[tcp.Reason]uint64
}

type stats struct {
	inPackets, outPackets, inSegs, outSegs, outRsts, activeOpens, passiveOpens atomic.Uint64
	dropMalformed, dropBadChecksum, dropNotOurs, dropNoListener                atomic.Uint64
	dropListenOverflow                                                         atomic.Uint64
	synCookiesSent, synCookiesValid, synCookiesInvalid                         atomic.Uint64
	icmpEchoReplies, icmpErrors, writeErrors                                   atomic.Uint64
}

// ErrStackClosed is returned by calls on a closed Stack.
var ErrStackClosed = errors.New("stack: closed")

// Stack is a userspace TCP/IP stack on one link.
type Stack struct {
	ep   link.Endpoint
	off  link.Offloader // ep, when it has offloads on; else nil
	opts Options
	cfg  tcp.Config
	ttl  uint8

	mu        sync.RWMutex
	addrs     []netip.Prefix
	conns     map[tcp.Tuple]*Conn
	listeners map[netip.AddrPort]*Listener
	nextPort  uint32

	isnKey    [32]byte
	cookieKey [32]byte
	start     time.Time

	timers timerQueue
	bufs   sync.Pool

	closeOnce sync.Once
	closed    chan struct{}
	done      sync.WaitGroup

	st  stats
	obs observation
}

// New starts a stack on ep. It reads the link until Close.
func New(ep link.Endpoint, opts Options) (*Stack, error) {
	if ep == nil {
		return nil, errors.New("stack: no link endpoint")
	}
	if err := opts.TCP.Validate(); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s := &Stack{
		ep:        ep,
		opts:      opts,
		cfg:       opts.TCP,
		ttl:       opts.TTL,
		addrs:     append([]netip.Prefix(nil), opts.Addrs...),
		conns:     make(map[tcp.Tuple]*Conn),
		listeners: make(map[netip.AddrPort]*Listener),
		start:     time.Now(),
		closed:    make(chan struct{}),
	}
	if s.ttl == 0 {
		s.ttl = 64
	}
	if s.opts.FinWait2Timeout <= 0 {
		s.opts.FinWait2Timeout = 60 * time.Second
	}
	if s.opts.Backlog <= 0 {
		s.opts.Backlog = 128
	}
	if s.opts.EphemeralPorts == [2]uint16{} {
		s.opts.EphemeralPorts = [2]uint16{32768, 60999}
	}
	if s.cfg.MSS == 0 {
		// The largest segment the link carries: the MTU less the IP and
		// TCP headers (RFC 9293 §3.7.1, RFC 879). IPv6's 20 extra bytes
		// are taken off per connection below.
		s.cfg.MSS = uint16(max(ep.MTU()-header.IPv4MinLen-header.TCPMinLen, 64))
	}
	if _, err := rand.Read(s.isnKey[:]); err != nil {
		return nil, fmt.Errorf("stack: ISN key: %w", err)
	}
	if _, err := rand.Read(s.cookieKey[:]); err != nil {
		return nil, fmt.Errorf("stack: SYN cookie key: %w", err)
	}
	s.nextPort = uint32(s.isnKey[0])<<8 | uint32(s.isnKey[1])
	if o, ok := ep.(link.Offloader); ok {
		if err := o.Offload(); err != nil {
			s.logf("stack: link offloads off, moving packets of at most %d bytes: %v", ep.MTU(), err)
		} else {
			s.off = o
		}
	}
	s.bufs.New = func() any { b := make([]byte, ep.MTU()+header.TCPMaxOptionsLen); return &b }
	s.obs.mask.Store(uint32(baseMask))
	s.timers.init(s)
	s.done.Add(2)
	go s.readLoop(ep, s.off)
	go s.timers.run()
	if mq, ok := ep.(link.MultiQueue); ok {
		// A reader per extra queue (IFF_MULTI_QUEUE): deliver is safe
		// to call from several goroutines.
		for _, q := range mq.ExtraQueues() {
			var off link.Offloader
			if o, ok := q.(link.Offloader); ok && s.off != nil && o.Offload() == nil {
				off = o
			}
			s.done.Add(1)
			go s.readLoop(q, off)
		}
	}
	return s, nil
}

func (s *Stack) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Close stops the stack: connections are aborted without a word to their
// peers, listeners and the link are closed, and the goroutines end.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		conns, ls := s.tables()
		for _, l := range ls {
			l.Close()
		}
		for _, c := range conns {
			c.shutdown()
		}
		s.ep.Close()
		s.timers.stop()
	})
	s.done.Wait()
	return nil
}

// Stats returns a snapshot of the stack's counters.
func (s *Stack) Stats() Stats {
	st := Stats{
		InPackets: s.st.inPackets.Load(), OutPackets: s.st.outPackets.Load(),
		InSegs: s.st.inSegs.Load(), OutSegs: s.st.outSegs.Load(), OutRsts: s.st.outRsts.Load(),
		ActiveOpens: s.st.activeOpens.Load(), PassiveOpens: s.st.passiveOpens.Load(),
		DropMalformed: s.st.dropMalformed.Load(), DropNotOurs: s.st.dropNotOurs.Load(),
		DropNoListener: s.st.dropNoListener.Load(), DropListenOverflow: s.st.dropListenOverflow.Load(),
		SynCookiesSent: s.st.synCookiesSent.Load(), SynCookiesValid: s.st.synCookiesValid.Load(),
		SynCookiesInvalid: s.st.synCookiesInvalid.Load(),
		ICMPEchoReplies:   s.st.icmpEchoReplies.Load(), ICMPErrors: s.st.icmpErrors.Load(),
		WriteErrors: s.st.writeErrors.Load(), DropBadChecksum: s.st.dropBadChecksum.Load(),
		AttemptFails: s.obs.attemptFails.Load(), EstabResets: s.obs.estabResets.Load(),
		DupAcks: s.obs.dupAcks.Load(), RetransSegs: s.retransSegs(),
	}
	st.InErrs = st.DropBadChecksum + st.DropMalformed
	st.ConnDrops = make(map[tcp.Reason]uint64)
	for r := range s.obs.drops {
		if n := s.obs.drops[r].Load(); n > 0 {
			st.ConnDrops[tcp.Reason(r)] = n
		}
	}
	return st
}

// Conns returns the stack's connections, for tables and tests.
func (s *Stack) Conns() []*Conn {
	conns, _ := s.tables()
	return conns
}

// tables returns a copy of the stack's connections and listeners.
func (s *Stack) tables() ([]*Conn, []*Listener) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	ls := make([]*Listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	return conns, ls
}

// isLocal reports whether a is one of the stack's addresses.
func (s *Stack) isLocal(a netip.Addr) bool {
	for _, p := range s.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// sourceFor picks the local address to reach dst from: one whose prefix
// holds dst, else the first of the same family.
func (s *Stack) sourceFor(dst netip.Addr) (netip.Addr, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var fallback netip.Addr
	for _, p := range s.addrs {
		if p.Addr().Is4() != dst.Is4() {
			continue
		}
		if p.Contains(dst) {
			return p.Addr(), true
		}
		if !fallback.IsValid() {
			fallback = p.Addr()
		}
	}
	return fallback, fallback.IsValid()
}

// isn returns an initial sequence number as RFC 6528 §3 gives it:
// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a
// clock ticking every 4 µs, F a keyed hash.
func (s *Stack) isn(id tcp.Tuple) seqnum.Value {
	m := uint32(time.Since(s.start) / (4 * time.Microsecond))
	return seqnum.Value(m + tupleHash(&s.isnKey, id, 0))
}

// readLoop reads packets from ep (the link, or one of its extra queues)
// and processes each; off is ep as an Offloader when its offloads are on.
func (s *Stack) readLoop(ep link.Endpoint, off link.Offloader) {
	defer s.done.Done()
	if off != nil {
		s.readLoopOffload(off)
		return
	}
	const batch = 64
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, max(ep.MTU(), 1500)+header.TCPMaxOptionsLen)
	}
	for {
		n, err := ep.ReadPackets(bufs, sizes)
		if err != nil {
			s.readFailed(err)
			return
		}
		now := time.Now()
		for i := range n {
			if sizes[i] > len(bufs[i]) {
				s.st.dropMalformed.Add(1) // cut short: not a packet we can check
				continue
			}
			s.deliver(now, bufs[i][:sizes[i]], false)
		}
	}
}

// readLoopOffload is readLoop on a link with offloads: buffers for the
// largest TCP segment the link passes whole (fewer of them, since each
// holds up to 44 MTU-sized packets' worth), and checksums the link
// vouches for taken as verified.
func (s *Stack) readLoopOffload(off link.Offloader) {
	const batch = 16
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	trusted := make([]bool, batch)
	for i := range bufs {
		bufs[i] = make([]byte, link.MaxOffloadPacket)
	}
	for {
		n, err := off.ReadPacketsOffload(bufs, sizes, trusted)
		if err != nil {
			s.readFailed(err)
			return
		}
		now := time.Now()
		for i := range n {
			if sizes[i] > len(bufs[i]) {
				s.st.dropMalformed.Add(1)
				continue
			}
			s.deliver(now, bufs[i][:sizes[i]], trusted[i])
		}
	}
}

// readFailed ends the stack after a link read error, unless it is
// closing anyway.
func (s *Stack) readFailed(err error) {
	select {
	case <-s.closed:
	default:
		s.logf("stack: link read: %v", err)
		go s.Close()
	}
}

// deliver handles one packet from the link. trusted says the link vouches
// for its TCP checksum (link.Offloader), which is then not checked.
func (s *Stack) deliver(now time.Time, pkt []byte, trusted bool) {
	s.st.inPackets.Add(1)
	if len(pkt) == 0 {
		s.st.dropMalformed.Add(1)
		return
	}
	if s.handleICMP(now, pkt) {
		return
	}
	var p header.Packet
	var err error
	// Called directly, not through a func value: p would escape.
	if trusted {
		err = header.ParsePacketTrusted(pkt, &p)
	} else {
		err = header.ParsePacket(pkt, &p)
	}
	if err != nil {
		if errors.Is(err, header.ErrBadChecksum) {
			s.st.dropBadChecksum.Add(1)
		} else {
			s.st.dropMalformed.Add(1)
		}
		return
	}
	if !s.isLocal(p.Dst) {
		s.st.dropNotOurs.Add(1)
		return
	}
	seg := tcp.Segment{
		Seq: p.TCP.Seq(), Ack: p.TCP.Ack(), Flags: p.TCP.Flags(),
		Window: p.TCP.Window(), Urgent: p.TCP.Urgent(), Payload: p.TCP.Payload(),
	}
	if err := p.TCP.Options(&seg.Options); err != nil {
		// RFC 9293 §3.2 MUST-7 allows resetting; dropping and counting
		// loses nothing a retransmission will not bring.
		s.st.dropMalformed.Add(1)
		return
	}
	s.st.inSegs.Add(1)
	id := tcp.Tuple{
		Local:  netip.AddrPortFrom(p.Dst, p.TCP.DstPort()),
		Remote: netip.AddrPortFrom(p.Src, p.TCP.SrcPort()),
	}
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	if c != nil {
		if c.input(now, &seg) {
			return
		}
		// A SYN reopening a connection from TIME-WAIT: the old one is
		// gone; go on as if it had never been there.
	}
	if seg.Flags&(header.SYN|header.ACK|header.RST) == header.SYN {
		if l := s.listenerFor(id.Local); l != nil {
			l.handleSyn(now, id, &seg)
			return
		}
	}
	if seg.Flags&(header.SYN|header.ACK|header.RST) == header.ACK {
		if l := s.listenerFor(id.Local); l != nil && l.handleCookieAck(now, id, &seg) {
			return
		}
	}
	// RFC 9293 §3.10.7.1: no connection — answer with RST.
	s.st.dropNoListener.Add(1)
	if rst, ok := tcp.ResetFor(&seg); ok {
		s.sendRaw(id, &rst)
	}
}

func (s *Stack) listenerFor(local netip.AddrPort) *Listener {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.listeners[local]; l != nil {
		return l
	}
	if local.Addr().Is4() {
		if l := s.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())]; l != nil {
			return l
		}
		if l := s.listeners[netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())]; l != nil && l.dual {
			return l
		}
		return nil
	}
	return s.listeners[netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())]
}

// getBuf and putBuf recycle packet buffers.
func (s *Stack) getBuf() *[]byte  { return s.bufs.Get().(*[]byte) }
func (s *Stack) putBuf(b *[]byte) { s.bufs.Put(b) }

// sendRaw builds and writes one segment outside any connection (an RST for
// a segment that matched none, a SYN cookie).
func (s *Stack) sendRaw(id tcp.Tuple, seg *tcp.Segment) {
	b := s.getBuf()
	defer s.putBuf(b)
	n, err := s.build(*b, id, seg)
	if err != nil {
		s.st.writeErrors.Add(1)
		return
	}
	if seg.Flags&header.RST != 0 {
		s.st.outRsts.Add(1)
	}
	s.st.outSegs.Add(1)
	s.write([][]byte{(*b)[:n]})
}

// build writes seg as an IP packet from id.Local to id.Remote into b. On
// a link with offloads the TCP checksum is left partial, for the link to
// finish (or, for a packet the kernel delivers locally, never compute):
// write hands every TCP packet to such a link that way.
func (s *Stack) build(b []byte, id tcp.Tuple, seg *tcp.Segment) (int, error) {
	f := header.TCPFields{
		SrcPort: id.Local.Port(), DstPort: id.Remote.Port(),
		Seq: seg.Seq, Ack: seg.Ack, Flags: seg.Flags, Window: seg.Window, Urgent: seg.Urgent,
	}
	if s.off != nil {
		return header.BuildPacketPartial(b, id.Local.Addr(), id.Remote.Addr(), s.ttl, &f, &seg.Options, seg.Payload)
	}
	return header.BuildPacket(b, id.Local.Addr(), id.Remote.Addr(), s.ttl, &f, &seg.Options, seg.Payload)
}

// write hands packets to the link. On a link with offloads it joins runs
// of segments into one (see gsoRun) and may change the elements of pkts
// and the packets' headers: the caller must only recycle the buffers
// afterwards.
func (s *Stack) write(pkts [][]byte) {
	if len(pkts) == 0 {
		return
	}
	if s.off != nil {
		s.writeOffload(pkts)
		return
	}
	n, err := s.ep.WritePackets(pkts)
	s.st.outPackets.Add(uint64(n))
	if err != nil {
		s.writeFailed(err)
	}
}

func (s *Stack) writeFailed(err error) {
	s.st.writeErrors.Add(1)
	select {
	case <-s.closed:
	default:
		s.logf("stack: link write: %v", err)
	}
}

// writeOffload writes pkts to a link with offloads: each run of segments
// gsoRun finds goes as one GSO packet, anything else as it is (a TCP
// packet with its checksum partial, as build left it).
func (s *Stack) writeOffload(pkts [][]byte) {
	for i := 0; i < len(pkts); {
		j, mss := gsoRun(pkts, i)
		if j-i > 1 {
			joinRun(pkts[i:j])
		} else {
			mss = 0
		}
		if err := s.off.WriteOffload(pkts[i:j], mss); err != nil {
			s.writeFailed(err)
			return
		}
		s.st.outPackets.Add(uint64(j - i))
		i = j
	}
}

// Send implements tcp.Output: it builds the segment into a packet queued on
// its connection, to be written when the call that caused it is done.
func (s *Stack) Send(tc *tcp.Conn, seg *tcp.Segment) {
	c, _ := tc.UserData().(*Conn)
	if c == nil {
		s.sendRaw(tc.ID(), seg)
		return
	}
	b := s.getBuf()
	n, err := s.build(*b, tc.ID(), seg)
	if err != nil {
		s.putBuf(b)
		s.st.writeErrors.Add(1)
		return
	}
	if seg.Flags&header.RST != 0 {
		s.st.outRsts.Add(1)
	}
	s.st.outSegs.Add(1)
	*b = (*b)[:cap(*b)]
	c.outq = append(c.outq, outPkt{buf: b, n: n})
}
