package stack

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// Listener is a listening TCP socket of a Stack. It implements
// net.Listener. Each SYN it takes starts a connection in SYN-RECEIVED on
// its SYN queue; once the handshake completes the connection waits on the
// accept queue for Accept. When the SYN queue is full it answers with SYN
// cookies (RFC 4987 §3.6) instead of keeping state.
type Listener struct {
	s       *Stack
	addr    netip.AddrPort
	backlog int
	dual    bool // an IPv6 wildcard that takes IPv4 too

	mu       sync.Mutex
	synQueue map[*Conn]struct{} // half-open: SYN-RECEIVED
	accept   chan *Conn
	// overflow holds connections whose handshake completed while the
	// accept queue was full, in order, until Accept makes room.
	overflow []*Conn
	closed   chan struct{}
	isClosed bool
}

// Listen listens on address ("host:port" or ":port") on the network "tcp",
// "tcp4" or "tcp6".
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	var ap netip.AddrPort
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	p, err := parsePort(port)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: err.Error(), Addr: address}}
	}
	dual := false
	switch {
	case host == "" && network == "tcp4":
		ap = netip.AddrPortFrom(netip.IPv4Unspecified(), p)
	case host == "":
		// ":port" on "tcp" takes both families, as Go's dual-stack
		// sockets do; "tcp6" takes IPv6 only.
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), p)
		dual = network == "tcp"
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: "host is not an IP address", Addr: address}}
		}
		ap = netip.AddrPortFrom(a.Unmap(), p)
	}
	l, err := s.ListenTCP(ap, 0)
	if err == nil && dual {
		l.dual = true
	}
	return l, err
}

func parsePort(s string) (uint16, error) {
	var n uint32
	if s == "" {
		return 0, errors.New("missing port")
	}
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return 0, errors.New("invalid port")
		}
		n = n*10 + uint32(ch-'0')
		if n > 65535 {
			return 0, errors.New("invalid port")
		}
	}
	return uint16(n), nil
}

// ListenTCP listens on addr (an unspecified address listens on all of the
// stack's addresses of that family) with a backlog for each of the SYN
// and accept queues; zero means the stack's default. Port 0 picks a free
// ephemeral port.
func (s *Stack) ListenTCP(addr netip.AddrPort, backlog int) (*Listener, error) {
	if backlog <= 0 {
		backlog = s.opts.Backlog
	}
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: err}
	}
	select {
	case <-s.closed:
		return nil, opErr(ErrStackClosed)
	default:
	}
	if !addr.Addr().IsUnspecified() && !s.isLocal(addr.Addr()) {
		return nil, opErr(errors.New("address is not the stack's (EADDRNOTAVAIL)"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr.Port() == 0 {
		lo, hi := uint32(s.opts.EphemeralPorts[0]), uint32(s.opts.EphemeralPorts[1])
		for range hi - lo + 1 {
			s.nextPort++
			cand := netip.AddrPortFrom(addr.Addr(), uint16(lo+s.nextPort%(hi-lo+1)))
			if s.listeners[cand] == nil {
				addr = cand
				break
			}
		}
	}
	if s.listeners[addr] != nil {
		return nil, opErr(errors.New("address already in use (EADDRINUSE)"))
	}
	l := &Listener{
		s: s, addr: addr, backlog: backlog,
		synQueue: make(map[*Conn]struct{}),
		accept:   make(chan *Conn, backlog),
		closed:   make(chan struct{}),
	}
	s.listeners[addr] = l
	return l, nil
}

// Accept waits for and returns the next connection.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptTCP() }

// AcceptTCP waits for and returns the next connection as a *Conn.
func (l *Listener) AcceptTCP() (*Conn, error) {
	for {
		select {
		case c := <-l.accept:
			l.refill()
			c.mu.Lock()
			c.l = nil
			st := c.tc.State()
			c.mu.Unlock()
			if st == tcp.Closed {
				continue // reset while it waited
			}
			return c, nil
		case <-l.closed:
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
		}
	}
}

// refill moves waiting connections from the overflow list into the accept
// queue, as far as it has room.
func (l *Listener) refill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.overflow) > 0 {
		select {
		case l.accept <- l.overflow[0]:
			l.overflow[0] = nil
			l.overflow = l.overflow[1:]
		default:
			return
		}
	}
}

// full reports whether the accept queue has no room. l.mu is held.
func (l *Listener) full() bool { return len(l.overflow) > 0 || len(l.accept) == cap(l.accept) }

// Addr returns the listening address as a *net.TCPAddr.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }

// Close stops listening. Connections not yet accepted are reset.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.isClosed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
	l.isClosed = true
	close(l.closed)
	pending := make([]*Conn, 0, len(l.synQueue)+len(l.overflow))
	for c := range l.synQueue {
		pending = append(pending, c)
	}
	pending = append(pending, l.overflow...)
	l.overflow = nil
	l.mu.Unlock()
	l.s.mu.Lock()
	if l.s.listeners[l.addr] == l {
		delete(l.s.listeners, l.addr)
	}
	l.s.mu.Unlock()
	for _, c := range pending {
		c.abort()
	}
	for {
		select {
		case c := <-l.accept:
			c.abort()
		default:
			return nil
		}
	}
}

// handleSyn takes a SYN for the listener: a new connection in the SYN
// queue, or, when that is full, a SYN cookie.
func (l *Listener) handleSyn(now time.Time, id tcp.Tuple, seg *tcp.Segment) {
	s := l.s
	l.mu.Lock()
	if l.isClosed {
		l.mu.Unlock()
		if rst, ok := tcp.ResetFor(seg); ok {
			s.sendRaw(id, &rst)
		}
		return
	}
	if l.full() {
		// The application is not accepting as fast as connections
		// arrive. As Linux does (tcp_conn_request), drop the SYN, even
		// with cookies: the client tries again in a second, and no
		// connection completes its handshake only to find no room.
		l.mu.Unlock()
		s.st.dropListenOverflow.Add(1)
		return
	}
	if len(l.synQueue) >= l.backlog {
		l.mu.Unlock()
		if !s.opts.NoSynCookies {
			l.sendCookie(now, id, seg)
		}
		// Without cookies the SYN is dropped; the client tries again.
		s.st.dropListenOverflow.Add(1)
		return
	}
	c := newConn(s, id)
	c.l = l
	l.synQueue[c] = struct{}{}
	l.mu.Unlock()

	s.mu.Lock()
	if old := s.conns[id]; old != nil {
		s.mu.Unlock()
		l.forget(c)
		old.input(now, seg)
		return
	}
	s.conns[id] = c
	s.mu.Unlock()
	s.st.passiveOpens.Add(1)

	c.mu.Lock()
	c.tc.Listen(now, s.isn(id))
	c.tc.Input(now, seg)
	c.afterLocked(now)
	c.mu.Unlock()
}

// enqueue moves a connection whose handshake completed from the SYN queue
// to the accept queue, or behind it when it is full: SYNs are not taken
// while it is (handleSyn), so the connections waiting there are at most
// those whose handshakes were under way. c.mu is held.
func (l *Listener) enqueue(c *Conn) {
	l.mu.Lock()
	delete(l.synQueue, c)
	if !l.isClosed {
		if len(l.overflow) == 0 {
			select {
			case l.accept <- c:
				l.mu.Unlock()
				return
			default:
			}
		}
		l.overflow = append(l.overflow, c)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	// The listener is gone: refuse the connection with RST.
	c.tc.Abort(time.Now())
}

// forget drops a connection from the SYN queue and the overflow list.
func (l *Listener) forget(c *Conn) {
	l.mu.Lock()
	delete(l.synQueue, c)
	for i, o := range l.overflow {
		if o == c {
			l.overflow = append(l.overflow[:i], l.overflow[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
}

// SYN cookies (RFC 4987 §3.6). The SYN,ACK's sequence number carries what
// the listener would have kept: 5 bits of a 64-second clock, 3 bits for
// the MSS, and 24 bits of a keyed hash of the connection, the clock and
// the client's ISN. The ACK that completes the handshake brings it back
// as SEG.ACK-1; a valid one creates the connection there and then.
// Options other than the MSS are not kept, so a connection that began
// with a cookie does without window scaling, SACK and timestamps.

var cookieMSS = [8]uint16{536, 1200, 1220, 1360, 1400, 1440, 1460, 8960}

func (s *Stack) cookieClock(now time.Time) uint32 {
	return uint32(now.Sub(s.start) / (64 * time.Second))
}

func (s *Stack) cookie(id tcp.Tuple, clientISN seqnum.Value, t uint32, mssIdx uint32) seqnum.Value {
	h := tupleHash(&s.cookieKey, id, uint32(clientISN)^t<<8)
	return seqnum.Value((t&0x1f)<<27 | (mssIdx&7)<<24 | h&0xffffff)
}

func (l *Listener) sendCookie(now time.Time, id tcp.Tuple, seg *tcp.Segment) {
	s := l.s
	mss := uint16(536)
	if seg.Options.HasMSS {
		mss = seg.Options.MSS
	}
	mss = min(mss, s.cfg.MSS)
	idx := uint32(0)
	for i, m := range cookieMSS {
		if m <= mss {
			idx = uint32(i)
		}
	}
	iss := s.cookie(id, seg.Seq, s.cookieClock(now), idx)
	synack := tcp.Segment{
		Seq: iss, Ack: seg.Seq.Add(1), Flags: header.SYN | header.ACK, Window: 65535,
	}
	synack.Options.MSS, synack.Options.HasMSS = cookieMSS[idx], true
	s.st.synCookiesSent.Add(1)
	s.sendRaw(id, &synack)
}

// handleCookieAck checks whether a bare ACK for no connection completes a
// cookie handshake and, if so, creates the connection.
func (l *Listener) handleCookieAck(now time.Time, id tcp.Tuple, seg *tcp.Segment) bool {
	s := l.s
	if s.opts.NoSynCookies {
		return false
	}
	iss := seg.Ack.Sub(1)
	clientISN := seg.Seq.Sub(1)
	v := uint32(iss)
	t, idx := v>>27, v>>24&7
	clock := s.cookieClock(now)
	if (clock-t)&0x1f > 1 || s.cookie(id, clientISN, clock-(clock-t)&0x1f, idx) != iss {
		s.st.synCookiesInvalid.Add(1)
		return false
	}
	s.st.synCookiesValid.Add(1)
	c := newConn(s, id)
	c.l = l
	s.mu.Lock()
	if s.conns[id] != nil {
		s.mu.Unlock()
		return false
	}
	s.conns[id] = c
	s.mu.Unlock()
	s.st.passiveOpens.Add(1)
	c.mu.Lock()
	c.tc.Listen(now, iss)
	if err := c.tc.ResumeFromCookie(now, seg, cookieMSS[idx]); err != nil {
		c.tc.Abort(now)
	}
	c.afterLocked(now)
	c.mu.Unlock()
	return true
}

// tupleHash is a keyed hash of a connection's sockets and an extra word:
// F of RFC 6528 §3, and the cookie's MAC.
func tupleHash(key *[32]byte, id tcp.Tuple, extra uint32) uint32 {
	var b [32 + 16 + 16 + 2 + 2 + 4]byte
	copy(b[:32], key[:])
	l16, r16 := id.Local.Addr().As16(), id.Remote.Addr().As16()
	copy(b[32:], l16[:])
	copy(b[48:], r16[:])
	binary.BigEndian.PutUint16(b[64:], id.Local.Port())
	binary.BigEndian.PutUint16(b[66:], id.Remote.Port())
	binary.BigEndian.PutUint32(b[68:], extra)
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint32(sum[:4])
}
