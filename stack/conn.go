package stack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Conn is a TCP connection of a Stack. It implements net.Conn and behaves
// as *net.TCPConn does: Read and Write block, deadlines give errors whose
// Timeout() is true, CloseWrite half-closes, and errors wrap the errno a
// Go programmer checks for (syscall.ECONNRESET, ECONNREFUSED, ETIMEDOUT).
//
// An idle connection holds little besides its state machine: the channels
// that blocked calls wait on, the deadlines and the handshake's signal are
// made when a call first needs them, and the timer queue links the
// connection in place (timerLink) rather than holding an entry for it.
type Conn struct {
	s  *Stack
	tc *tcp.Conn
	l  *Listener // for a passive connection not yet accepted
	mu sync.Mutex

	outq   []outPkt
	obsGen uint64    // the observation mask generation c.tc was given
	tl     timerLink // the timer queue's bookkeeping, under timers.mu

	// twSince is when the connection entered TIME-WAIT with timestamps
	// on (Unix nanoseconds; zero otherwise), read by bindEphemeral
	// without the lock to reuse the port (RFC 6191).
	twSince atomic.Int64

	// Made on first use, under mu: readable and writable hold a token
	// when Read or Write may make progress; synced is closed once the
	// handshake of a Dial completes or fails; dl holds the deadlines.
	readable, writable chan struct{}
	synced             chan struct{}
	dl                 *deadlines

	// onReadable is the function OnReadable registered, called once when
	// Read would not block.
	onReadable func()

	orphanAt time.Time // when a closed connection stuck in FIN-WAIT-2 is dropped

	queued     bool // on the listener's accept queue
	gone       bool // removed from the stack's table
	retired    bool // its counters are in the stack's totals (under obs.retireMu)
	userClosed bool // Close was called: further calls get net.ErrClosed
	readShut   bool // CloseRead was called
	linger0    bool // SetLinger(0): Close aborts
	syncDone   bool // synced, if made, is closed

	id tcp.Tuple
}

// deadlines are a connection's read and write deadlines.
type deadlines struct{ rd, wr deadline }

type outPkt struct {
	buf *[]byte
	n   int
}

func newConn(s *Stack, id tcp.Tuple) *Conn {
	c := &Conn{s: s, id: id}
	cfg := &s.cfg
	if id.Remote.Addr().Is6() && !id.Remote.Addr().Is4In6() && s.cfg.MSS > 20 {
		// IPv6's header is 20 bytes longer than IPv4's.
		v6 := s.cfg
		v6.MSS -= 20
		cfg = &v6
	}
	c.tc = tcp.NewConn(id, cfg, s)
	c.tc.SetUserData(c)
	// The timestamp clock's offset is a keyed hash of the sockets (RFC
	// 7323 §7.1): the same for every incarnation of the pair, so their
	// timestamps keep increasing and a peer still in TIME-WAIT accepts
	// the next one's SYN (RFC 6191).
	c.tc.SetTimestampOffset(tupleHash(&s.isnKey, id, 0x7473) | 1)
	c.watch()
	return c
}

// TCP returns the connection's state machine, for tables and tests. Lock
// nothing and call nothing on it that changes it.
func (c *Conn) TCP() *tcp.Conn { return c.tc }

// Status reports the connection's TCB (RFC 9293 §3.10.6).
func (c *Conn) Status() tcp.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tc.Status()
}

// input feeds an arriving segment to the connection. It reports false when
// the segment is a SYN that may reopen a connection in TIME-WAIT (RFC 9293
// §3.6.1, RFC 6191): the old connection is then removed and the caller
// treats the SYN as new.
func (c *Conn) input(now time.Time, seg *tcp.Segment) bool {
	c.mu.Lock()
	if c.tc.State() == tcp.TimeWait && c.tc.ReopenAllowed(seg) {
		c.mu.Unlock()
		c.s.remove(c)
		return false
	}
	c.tc.Input(now, seg)
	c.afterLocked(now)
	c.mu.Unlock()
	return true
}

// afterLocked runs after every call into the state machine, with c.mu
// held: it writes the packets the call produced, reschedules the timers,
// wakes blocked readers and writers, and retires a closed connection.
func (c *Conn) afterLocked(now time.Time) {
	tc := c.tc
	if c.obsGen != c.s.obs.gen.Load() {
		// Someone subscribed or left: observe what is wanted now.
		c.watch()
	}
	if c.readShut && tc.Readable() > 0 {
		discard(now, tc)
	}
	st := tc.State()
	if c.l != nil && !c.queued && st.Synchronized() {
		// The handshake of a passive open completed: to the accept
		// queue (or refused, if it is full).
		c.queued = true
		c.l.enqueue(c)
		st = tc.State()
	}
	if len(c.outq) > 0 {
		// The slice of packets is borrowed from a pool, kept between
		// calls: built on the stack, it would escape through the link's
		// interface and cost an allocation per call that sends; held by
		// each connection, it would cost every idle one its memory.
		pp := pktsPool.Get().(*[][]byte)
		pkts := (*pp)[:0]
		for _, p := range c.outq {
			pkts = append(pkts, (*p.buf)[:p.n])
		}
		c.s.write(pkts)
		for i, p := range c.outq {
			c.s.putBuf(p.buf)
			c.outq[i] = outPkt{}
		}
		clear(pkts)
		*pp = pkts[:0]
		pktsPool.Put(pp)
		c.outq = c.outq[:0]
	}
	if c.readable != nil && (tc.Readable() > 0 || tc.ReadClosed() || st == tcp.Closed || c.readShut) {
		signal(c.readable)
	}
	if c.onReadable != nil && c.readReady() {
		f := c.onReadable
		c.onReadable = nil
		go f()
	}
	if c.writable != nil && (tc.Writable() > 0 || !writableState(st)) {
		signal(c.writable)
	}
	if c.synced != nil && !c.syncDone && (st.Synchronized() || st == tcp.Closed) {
		c.syncDone = true
		close(c.synced)
	}
	if st == tcp.TimeWait && c.twSince.Load() == 0 && tc.TimestampsOn() {
		c.twSince.Store(now.UnixNano())
	}
	if st == tcp.Closed || st == tcp.Listen && c.l != nil {
		// Closed, or a passive open that an RST sent back to LISTEN: the
		// listener itself still listens; this half-open one is done.
		if !c.gone {
			c.gone = true
			go c.s.remove(c)
		}
		return
	}
	d := tc.Deadline()
	if c.userClosed && st == tcp.FinWait2 {
		// Nobody will read this connection again, and RFC 9293 sets no
		// limit on how long the peer may keep its side open. Linux gives
		// an orphan tcp_fin_timeout (60 s) in FIN-WAIT-2; so do we.
		if c.orphanAt.IsZero() {
			c.orphanAt = now.Add(c.s.opts.FinWait2Timeout)
		}
		if !now.Before(c.orphanAt) {
			tc.Fail(now, nil)
			c.afterLocked(now)
			return
		}
		if d.IsZero() || c.orphanAt.Before(d) {
			d = c.orphanAt
		}
	}
	c.s.timers.schedule(c, d)
}

// pktsPool holds the slices afterLocked hands the link.
var pktsPool = sync.Pool{New: func() any { return new([][]byte) }}

// waitChan returns *ch, making it first if need be: the channel a blocked
// call waits on for a token. c.mu is held.
func waitChan(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{}, 1)
	}
	return *ch
}

// readDeadline and writeDeadline return the channel closed when the read
// or write deadline passes; nil (never ready) while no deadline was ever
// set. c.mu is held.
func (c *Conn) readDeadline() chan struct{} {
	if c.dl == nil {
		return nil
	}
	return c.dl.rd.wait()
}

func (c *Conn) writeDeadline() chan struct{} {
	if c.dl == nil {
		return nil
	}
	return c.dl.wr.wait()
}

// setDeadlines sets the read deadline (if rd) and the write deadline (if
// wr) to t, making the deadlines on first use.
func (c *Conn) setDeadlines(t time.Time, rd, wr bool) {
	c.mu.Lock()
	dl := c.dl
	if dl == nil {
		if t.IsZero() {
			c.mu.Unlock()
			return // no deadline, as before
		}
		dl = &deadlines{}
		dl.rd.init()
		dl.wr.init()
		c.dl = dl
		// A call blocked before the deadlines existed waits on no
		// deadline channel: wake it to take the new one.
		if c.readable != nil {
			signal(c.readable)
		}
		if c.writable != nil {
			signal(c.writable)
		}
	}
	c.mu.Unlock()
	if rd {
		dl.rd.set(t)
	}
	if wr {
		dl.wr.set(t)
	}
}

func writableState(st tcp.State) bool { return st == tcp.Established || st == tcp.CloseWait }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func discard(now time.Time, tc *tcp.Conn) {
	var buf [4096]byte
	for tc.Readable() > 0 {
		tc.Read(now, buf[:])
	}
}

// fire runs the connection's due timers.
func (c *Conn) fire(now time.Time) {
	c.mu.Lock()
	c.tc.HandleTimeout(now)
	c.afterLocked(now)
	c.mu.Unlock()
}

// shutdown aborts the connection without sending anything, when the stack
// closes.
func (c *Conn) shutdown() {
	c.mu.Lock()
	c.outq = c.outq[:0]
	if c.tc.State() != tcp.Closed {
		c.tc.SetObserver(nil)
		c.tc = tcp.NewConn(c.id, &c.s.cfg, nil) // a CLOSED TCB
		c.tc.SetUserData(c)
	}
	c.afterLocked(time.Now())
	c.mu.Unlock()
}

// Read reads data from the connection. It blocks until data arrives, the
// peer closes its side (io.EOF), the connection fails, or the read
// deadline passes.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if c.userClosed {
			c.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		}
		if c.readShut {
			c.mu.Unlock()
			return 0, io.EOF
		}
		rdl := c.readDeadline()
		if isClosed(rdl) {
			// A deadline in the past fails the call even when data waits,
			// as with *net.TCPConn.
			c.mu.Unlock()
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		now := time.Now()
		n, err := c.tc.Read(now, p)
		c.afterLocked(now)
		readable := waitChan(&c.readable)
		c.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, c.opError("read", err)
		}
		select {
		case <-readable:
		case <-rdl:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case <-c.s.closed:
			return 0, c.opError("read", net.ErrClosed)
		}
	}
}

// WaitRead blocks until a Read would not block — data has arrived, the
// peer has closed its side, the connection has failed or been closed, or
// the read deadline has passed — and then returns nil, leaving Read to
// return the data or the error. It returns ctx's error if ctx ends first.
//
// It takes no buffer, so a server can park an idle connection here and
// borrow a read buffer (from a sync.Pool, say) only once data is there:
// an idle connection then holds no read buffer, where a blocked Read
// holds the caller's. A zero-length Read cannot serve for this, since by
// net.Conn's convention it returns at once.
func (c *Conn) WaitRead(ctx context.Context) error {
	for {
		c.mu.Lock()
		rdl := c.readDeadline()
		if isClosed(rdl) || c.readReady() {
			c.mu.Unlock()
			return nil
		}
		readable := waitChan(&c.readable)
		c.mu.Unlock()
		select {
		case <-readable:
		case <-rdl:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.s.closed:
			return nil
		}
	}
}

// OnReadable arranges for f to be called once, on a goroutine of its
// own, as soon as a Read would not block: data has arrived, the peer has
// closed its side, the connection has failed, or Close or CloseRead was
// called (a passing read deadline does not count). If that is so already,
// f is called at once. A later call replaces an f not yet called; a nil f
// cancels it.
//
// It lets a server keep many idle connections without a goroutine or a
// read buffer for each: the handler runs when there is work, reads what
// is there with a borrowed buffer, and registers itself again.
func (c *Conn) OnReadable(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f != nil && c.readReady() {
		c.onReadable = nil
		go f()
		return
	}
	c.onReadable = f
}

// readReady reports whether a Read would return without waiting, the
// read deadline aside. c.mu is held.
func (c *Conn) readReady() bool {
	tc := c.tc
	return c.userClosed || c.readShut || tc.Readable() > 0 || tc.ReadClosed() || tc.State() == tcp.Closed
}

// Write writes data to the connection. It blocks until all of p is queued
// for sending, the connection fails, or the write deadline passes.
func (c *Conn) Write(p []byte) (int, error) {
	done := 0
	for {
		c.mu.Lock()
		if c.userClosed {
			c.mu.Unlock()
			return done, c.opError("write", net.ErrClosed)
		}
		wdl := c.writeDeadline()
		if isClosed(wdl) {
			c.mu.Unlock()
			return done, c.opError("write", os.ErrDeadlineExceeded)
		}
		now := time.Now()
		n, err := c.tc.Write(now, p[done:])
		c.afterLocked(now)
		writable := waitChan(&c.writable)
		c.mu.Unlock()
		done += n
		if err != nil {
			return done, c.opError("write", err)
		}
		if done == len(p) {
			return done, nil
		}
		select {
		case <-writable:
		case <-wdl:
			return done, c.opError("write", os.ErrDeadlineExceeded)
		case <-c.s.closed:
			return done, c.opError("write", net.ErrClosed)
		}
	}
}

// Close closes the connection: the FIN follows any data still queued, and
// the stack finishes the close with the peer on its own. Unread received
// data, or SetLinger(0), makes it an abort with RST instead, as Linux does
// (RFC 2525 §2.17).
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.userClosed {
		return c.opError("close", net.ErrClosed)
	}
	c.userClosed = true
	now := time.Now()
	if c.linger0 || c.tc.Readable() > 0 {
		c.tc.Abort(now)
	} else {
		c.tc.Close(now)
	}
	c.afterLocked(now)
	if c.readable != nil {
		signal(c.readable)
	}
	if c.writable != nil {
		signal(c.writable)
	}
	if c.dl != nil {
		c.dl.rd.set(time.Time{})
		c.dl.wr.set(time.Time{})
	}
	return nil
}

// CloseWrite shuts down the sending side: a FIN follows the queued data.
// Reading goes on until the peer closes (a half close, RFC 9293 §3.6).
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.userClosed {
		return c.opError("close", net.ErrClosed)
	}
	now := time.Now()
	err := c.tc.Close(now)
	c.afterLocked(now)
	if err != nil && !errors.Is(err, tcp.ErrConnectionClosing) {
		return c.opError("close", err)
	}
	return nil
}

// CloseRead shuts down the reading side: Read returns io.EOF, and data
// that arrives is acknowledged and discarded.
func (c *Conn) CloseRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.userClosed {
		return c.opError("close", net.ErrClosed)
	}
	c.readShut = true
	c.afterLocked(time.Now())
	return nil
}

// LocalAddr returns the local address as a *net.TCPAddr.
func (c *Conn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.id.Local) }

// RemoteAddr returns the remote address as a *net.TCPAddr.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.id.Remote) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.setDeadlines(t, true, true)
	return nil
}

// SetReadDeadline sets the deadline for Read calls, pending ones included.
func (c *Conn) SetReadDeadline(t time.Time) error { c.setDeadlines(t, true, false); return nil }

// SetWriteDeadline sets the deadline for Write calls, pending ones included.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.setDeadlines(t, false, true); return nil }

// SetNoDelay turns Nagle's algorithm off (true) or on, as TCP_NODELAY.
func (c *Conn) SetNoDelay(noDelay bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.tc.SetNoDelay(now, noDelay)
	c.afterLocked(now)
	return nil
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *Conn) SetKeepAlive(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.tc.SetKeepAlive(now, on, 0, 0, 0)
	c.afterLocked(now)
	return nil
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// interval between probes, as Go's *net.TCPConn does.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.tc.SetKeepAlive(now, true, d, d, 0)
	c.afterLocked(now)
	return nil
}

// SetLinger sets what Close does with unsent data: with sec == 0 Close
// aborts the connection with RST at once; otherwise (Go's default is -1)
// the stack finishes sending in the background.
func (c *Conn) SetLinger(sec int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.linger0 = sec == 0
	return nil
}

// opError wraps err as the net package does.
func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Dial connects to address ("host:port", host an IP address) on the
// network "tcp", "tcp4" or "tcp6".
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), network, address)
}

// DialContext connects as Dial does; the context bounds the handshake.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	dst, err := resolve(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err := s.DialTCP(ctx, dst)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialTCP connects to dst and returns the *Conn.
func (s *Stack) DialTCP(ctx context.Context, dst netip.AddrPort) (*Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(dst), Err: err}
	}
	select {
	case <-s.closed:
		return nil, opErr(ErrStackClosed)
	default:
	}
	src, ok := s.sourceFor(dst.Addr())
	if !ok {
		return nil, opErr(errors.New("no local address of the destination's family"))
	}
	c, err := s.bindEphemeral(src, dst)
	if err != nil {
		return nil, opErr(err)
	}
	s.st.activeOpens.Add(1)
	c.mu.Lock()
	synced := make(chan struct{})
	c.synced = synced
	now := time.Now()
	if err := c.tc.Connect(now, s.isn(c.id)); err != nil {
		c.mu.Unlock()
		s.remove(c)
		return nil, opErr(err)
	}
	c.afterLocked(now)
	c.mu.Unlock()
	select {
	case <-synced:
	case <-ctx.Done():
		c.abort()
		return nil, opErr(ctx.Err())
	case <-s.closed:
		return nil, opErr(ErrStackClosed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.synced = nil // closed and read: let it go
	if c.tc.State() == tcp.Closed {
		err := c.tc.Err()
		if err == nil {
			err = tcp.ErrConnectionRefused
		}
		return nil, c.opError("dial", err)
	}
	return c, nil
}

// abort ends the connection with RST if it has a peer.
func (c *Conn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.tc.Abort(now)
	c.afterLocked(now)
}

// resolve parses a "host:port" whose host is an IP address.
func resolve(network, address string) (netip.AddrPort, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return netip.AddrPort{}, net.UnknownNetworkError(network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "address is not IP:port (this stack does not resolve names)", Addr: address}
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if network == "tcp4" && !ap.Addr().Is4() || network == "tcp6" && ap.Addr().Is4() {
		return netip.AddrPort{}, &net.AddrError{Err: "address family does not match " + network, Addr: address}
	}
	return ap, nil
}

// bindEphemeral registers a new connection from src to dst on a free
// ephemeral port. A port whose connection to dst has sat in TIME-WAIT for
// a second, with timestamps on, is free too, as Linux's tcp_tw_reuse has
// it: the new incarnation's timestamps are higher (its offset is the
// pair's, its clock has moved on), so neither end can mistake an old
// segment for a new one (RFC 6191, RFC 7323 §5), and the peer's TIME-WAIT
// takes the SYN. Without this, a client making short connections to one
// server runs out of its 28232 ports in a minute.
func (s *Stack) bindEphemeral(src netip.Addr, dst netip.AddrPort) (*Conn, error) {
	lo, hi := uint32(s.opts.EphemeralPorts[0]), uint32(s.opts.EphemeralPorts[1])
	span := hi - lo + 1
	reuseBefore := time.Now().Add(-time.Second).UnixNano()
	s.mu.Lock()
	for range span {
		s.nextPort++
		port := uint16(lo + s.nextPort%span)
		id := tcp.Tuple{Local: netip.AddrPortFrom(src, port), Remote: dst}
		if s.listeners[id.Local] != nil {
			continue
		}
		old := s.conns[id]
		if old != nil {
			if since := old.twSince.Load(); since == 0 || since > reuseBefore {
				continue
			}
			delete(s.conns, id)
		}
		c := newConn(s, id)
		s.conns[id] = c
		s.mu.Unlock()
		if old != nil {
			// The old incarnation leaves the tables; its counters stay.
			s.timers.unschedule(old)
			s.retire(old)
		}
		return c, nil
	}
	s.mu.Unlock()
	return nil, errors.New("no free ephemeral port (EADDRNOTAVAIL)")
}

// remove takes a connection out of the tables.
func (s *Stack) remove(c *Conn) {
	s.mu.Lock()
	removed := s.conns[c.id] == c
	if removed {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
	if removed {
		s.timers.unschedule(c)
		s.retire(c)
	}
	if c.l != nil {
		c.l.forget(c)
	}
}

// deadline is a settable deadline with a channel closed when it passes, in
// the manner of net.Pipe's.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{}
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

// set arms the deadline at t; the zero time clears it; a time in the past
// expires it at once.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close the channel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
