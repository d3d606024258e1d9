// Package tcp is TCP's connection state machine, sans I/O: the
// transmission control block of RFC 9293 and the event processing of its
// §3.10 (user calls, segment arrival, timeouts), with nothing else.
//
// A Conn never reads a clock, sleeps, starts a goroutine or touches a
// network. The caller feeds it the current time with every call, hands it
// arriving segments with Input, fires its timers with HandleTimeout when
// Deadline passes, and receives the segments it sends through a small
// Output interface. That makes every transition testable with exact
// segments and lets the same Conn run in the deterministic simulator, the
// runtime stack, and the fuzzer.
//
// The code follows the RFC's structure: the user calls are in calls.go in
// the order of §3.10.1–§3.10.6, segment arrival in input.go in the order of
// §3.10.7 with each step's number in a comment, and the timeouts of
// §3.10.8 in timers.go.
package tcp

import (
	"math"
	"sync"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp/cc"
)

// Output receives the segments a Conn sends. The segment, and the payload
// it refers to, are valid only during the call: an implementation copies
// them into a packet before returning.
type Output interface {
	Send(c *Conn, seg *Segment)
}

// Conn is one TCP connection: a transmission control block (RFC 9293
// §3.3.1) and the rules that move it through the states of §3.3.2.
//
// A Conn is not safe for concurrent use; the runtime that drives it holds
// a lock per connection.
//
// The fields are laid out for size, the wide ones first and the bytes and
// flags together at the end, since a runtime may hold a million of these:
// what only loss recovery and reordering need (the SACK scoreboard, the
// out-of-order record), the congestion controller's state and the queues'
// storage are held only while in use.
type Conn struct {
	id   Tuple
	cfg  *Config
	out  Output
	obs  Observer
	user any
	err  error // why the connection ended, once it has

	// Counters over the connection's life (RFC 4022's tcpInSegs,
	// tcpOutSegs and tcpRetransSegs, per connection).
	segsIn, segsOut, retransSegs uint64

	// The queues. snd holds every byte from sndBuf (the first data byte
	// not yet acknowledged) to the last one the user wrote; rcv holds
	// bytes received in order and not yet read.
	snd, rcv ring

	// Congestion control and loss recovery (RFC 5681, RFC 6582, RFC 6675).
	cc     cc.Algorithm // made on first use (ctl) once ccOn
	sacked ranges       // what the peer has SACKed above SND.UNA
	ooo    ranges       // out-of-order data held in rcv beyond RCV.NXT
	lossSt *lossState   // RACK-TLP's record of what is in flight (rack.go), while anything is
	// An application-limited ACK that came before cc was made: when, in
	// Unix nanoseconds (zero: none), and (ccAckEmptied) whether it
	// acknowledged all in flight (ctl).
	ccAckAt int64

	// Timers: a deadline per timer, zero when stopped.
	timers [numTimerSlots]time.Time

	// The retransmission timer's estimator (RFC 6298).
	srtt, rttvar, minRTT time.Duration
	rto                  time.Duration
	timedAt              time.Time

	lastSend time.Time
	lastRecv time.Time // when a segment last arrived (keep-alive)

	// Per-connection settings, from the Config and then the setters.
	kaIdle, kaInterval time.Duration

	sndMSS  int // largest payload we put in one segment
	peerMSS int // the MSS the peer announced

	// What the current call is handling, for the causes of events.
	curSeg SegmentInfo

	// Send sequence variables (RFC 9293 §3.3.1). sndNxt is SND.NXT, the
	// next new sequence number; rtxNxt is where retransmission resumes
	// after a timeout and equals sndNxt when nothing is being resent.
	iss            seqnum.Value
	sndUna, sndNxt seqnum.Value
	rtxNxt         seqnum.Value
	sndWnd         uint32
	maxSndWnd      uint32 // MAX.SND.WND of RFC 5961 §5.2
	sndWL1, sndWL2 seqnum.Value
	sndBuf         seqnum.Value
	finSeq         seqnum.Value // the FIN's sequence number, once finQueued
	recover        seqnum.Value // RecoveryPoint: SND.NXT when recovery began
	highRxt        seqnum.Value // HighRxt: the end of the last retransmission
	timedSeq       seqnum.Value

	// Receive sequence variables.
	irs         seqnum.Value
	rcvNxt      seqnum.Value
	rcvUP       seqnum.Value
	rcvAdv      seqnum.Value // right edge of the window last advertised
	peerFin     seqnum.Value // where the peer's FIN sits, once seen
	lastAckSent seqnum.Value
	// A duplicate segment's range, which our next ACK reports as a D-SACK
	// block (RFC 2883); none when dsackStart == dsackEnd.
	dsackStart, dsackEnd seqnum.Value
	// Receive buffer auto-tuning (autotune.go): where the reader stood,
	// and when (milliseconds), at the start of the current measurement.
	rcvqSeq  seqnum.Value
	rcvqTime uint32

	// Timestamps (RFC 7323).
	tsRecent uint32
	tsOffset uint32
	tsLast   uint32 // the last TSval sent, once tsSent

	dupAcks  int32
	probes   int32 // unanswered zero-window probes
	kaProbes int32 // unanswered keep-alive probes
	retries  int32
	kaCount  int32
	rcvMSS   int32 // the largest segment received: "full-sized"
	ackPend  int32 // bytes received since our last ACK (delayed ACK)

	mask EventMask // the events obs wants; zero when obs is nil

	state   State
	passive bool // opened by a passive OPEN: an RST in SYN-RECEIVED returns to LISTEN

	// Options agreed in the handshake (RFC 7323, RFC 2018).
	wsOK, tsOK, sackOK bool
	sndShift, rcvShift uint8 // window scale: the peer's, applied to SEG.WND; ours
	tsSent             bool

	hasRTT, timing bool
	ccOn           bool // congestion control has started
	ccAckEmptied   bool
	inRecovery     bool
	urgent         bool // an urgent pointer ahead of the data read
	peerFinSet     bool

	finQueued  bool // CLOSE was called: a FIN follows the queued data
	closeAfter bool // CLOSE arrived in SYN-RECEIVED with data queued
	finRcvd    bool // the peer's FIN was received: no more data will come
	ackNow     bool // an ACK must go out before the current call returns
	ackReason  Reason

	curCall  Call
	curTimer Timer
	curKind  CauseKind
	rtxKind  Timer // which timer the retransmission slot holds

	noDelay   bool
	keepAlive bool

	// RACK.reo_wnd_mult less one and RACK.reo_wnd_persist (RFC 8985 §6.2
	// step 4; rack.go).
	reoMult, reoPersist uint8
}

// NewConn returns a connection in the CLOSED state for the sockets id.
// cfg may be shared by many connections; nil means the defaults. Segments
// the connection sends go to out.
func NewConn(id Tuple, cfg *Config, out Output) *Conn {
	if cfg == nil {
		cfg = &Config{}
	}
	c := &Conn{id: id, cfg: cfg, out: out}
	c.SetObserver(cfg.Observer)
	c.noDelay = cfg.NoDelay
	c.keepAlive = cfg.KeepAlive
	c.kaIdle, c.kaInterval, c.kaCount = cfg.keepAliveIdle(), cfg.keepAliveInterval(), clamp32(cfg.keepAliveCount())
	c.resetTCB()
	return c
}

// resetTCB gives the connection a fresh TCB in the CLOSED state, keeping
// only its sockets, settings and attachments: an OPEN on a connection that
// has ended starts a new incarnation with nothing of the old one.
func (c *Conn) resetTCB() {
	*c = Conn{
		id: c.id, cfg: c.cfg, out: c.out, obs: c.obs, mask: c.mask, user: c.user, tsOffset: c.tsOffset,
		segsIn: c.segsIn, segsOut: c.segsOut, retransSegs: c.retransSegs,
		curKind: c.curKind, curCall: c.curCall,
		noDelay: c.noDelay, keepAlive: c.keepAlive,
		kaIdle: c.kaIdle, kaInterval: c.kaInterval, kaCount: c.kaCount,
		state: Closed,
		snd:   newRing(c.cfg.sendBuffer()),
		rcv:   newRing(c.cfg.receiveBuffer()),
		rto:   c.cfg.initialRTO(),
	}
	c.sndMSS = c.defaultSendMSS()
	c.peerMSS = c.sndMSS
	c.rcvMSS = DefaultSendMSS
	if !c.cfg.NoWindowScale {
		c.rcvShift = c.ourWindowShift()
	}
}

// clamp32 narrows a count to the int32 a Conn keeps it in.
func clamp32(n int) int32 { return int32(min(n, math.MaxInt32)) }

// ID returns the connection's sockets.
func (c *Conn) ID() Tuple { return c.id }

// State returns the connection's current state.
func (c *Conn) State() State { return c.state }

// Err returns why the connection ended (ErrConnectionReset,
// ErrConnectionRefused, ErrTimeout, ...), or nil while it has not, or when
// it closed normally.
func (c *Conn) Err() error { return c.err }

// SetObserver replaces the observer that Config gave the connection; it
// receives every kind of event. nil stops observation.
func (c *Conn) SetObserver(o Observer) { c.SetObserverMask(o, AllEvents) }

// SetObserverMask makes o the connection's observer for the kinds of event
// in m only. Events outside m are not even built, so a runtime that counts
// state changes can watch every connection for the price of the few
// events it asks for.
func (c *Conn) SetObserverMask(o Observer, m EventMask) {
	if o == nil {
		m = 0
	}
	c.obs, c.mask = o, m
}

// observing reports whether an event of type t is to be built and handed
// to the observer. With the tcpstate_notrace build tag it is constant
// false and the compiler removes every emit site.
func (c *Conn) observing(t EventType) bool { return tracing && c.mask&(1<<t) != 0 }

// SetNoDelay turns Nagle's algorithm off (true) or on for this
// connection, as TCP_NODELAY does.
func (c *Conn) SetNoDelay(now time.Time, noDelay bool) {
	c.noDelay = noDelay
	if noDelay {
		c.flush(now)
	}
}

// SetKeepAlive turns keep-alive probes on or off for this connection and,
// for each value that is positive, sets the idle time before the first
// probe, the interval between probes, and how many go unanswered before
// the connection ends (RFC 1122 §4.2.3.6).
func (c *Conn) SetKeepAlive(now time.Time, on bool, idle, interval time.Duration, count int) {
	c.keepAlive = on
	if idle > 0 {
		c.kaIdle = idle
	}
	if interval > 0 {
		c.kaInterval = interval
	}
	if count > 0 {
		c.kaCount = clamp32(count)
	}
	switch {
	case !on:
		c.stopTimer(now, TimerKeepAlive)
	case c.state == Established || c.state == CloseWait:
		c.kaProbes = 0
		c.setTimer(now, TimerKeepAlive, c.lastRecv.Add(c.kaIdle))
	}
}

// SetUserData attaches a value of the caller's to the connection, for
// runtimes that map a Conn back to their own records.
func (c *Conn) SetUserData(v any) { c.user = v }

// UserData returns the value SetUserData attached.
func (c *Conn) UserData() any { return c.user }

// Readable returns how many received bytes are waiting to be read.
func (c *Conn) Readable() int { return c.rcv.len() }

// Writable returns how many bytes Write would accept now.
func (c *Conn) Writable() int {
	switch c.state {
	case Listen, SynSent, SynReceived, Established, CloseWait:
		if !c.finQueued {
			return c.snd.free()
		}
	}
	return 0
}

// ReadClosed reports whether the peer's FIN has arrived: once the queued
// bytes are read, Read returns io.EOF.
func (c *Conn) ReadClosed() bool { return c.finRcvd }

// SendQueued returns the bytes written but not yet acknowledged.
func (c *Conn) SendQueued() int { return c.snd.len() }

func (c *Conn) defaultSendMSS() int {
	// RFC 9293 §3.7.1: without an MSS option, assume 536 for IPv4 and
	// 1220 for IPv6 (RFC 8200's 1280-byte minimum MTU).
	if c.id.Remote.Addr().Is6() && !c.id.Remote.Addr().Is4In6() {
		return 1220
	}
	return DefaultSendMSS
}

// Status is the answer to the STATUS call (RFC 9293 §3.10.6).
type Status struct {
	State   State
	ID      Tuple
	Passive bool

	ISS, SndUna, SndNxt seqnum.Value
	SndWnd              uint32
	IRS, RcvNxt         seqnum.Value
	RcvWnd              uint32
	SndMSS              int

	SendQueued   int // bytes written, not yet acknowledged
	SendUnsent   int // of those, bytes not yet sent
	RecvQueued   int // bytes received, not yet read
	UrgentQueued bool

	RTO         time.Duration
	SRTT        time.Duration // smoothed round-trip time; zero before a sample
	Retransmits int           // consecutive expiries of the retransmission timer
	Cwnd        int           // congestion window in bytes; zero without congestion control

	// PacingRate is the rate a rate-based congestion control (BBR) paces
	// at and Bandwidth its estimate of the path's bottleneck bandwidth,
	// both in bytes per second; zero otherwise.
	PacingRate, Bandwidth float64

	// Counters over the connection's life.
	SegsIn, SegsOut, RetransSegs uint64

	// Timers holds each timer's deadline, zero when it is stopped.
	Timers [numTimers]time.Time
	Err    error
}

// Status reports the connection's state and its TCB's variables.
func (c *Conn) Status() Status {
	st := Status{
		State: c.state, ID: c.id, Passive: c.passive,
		ISS: c.iss, SndUna: c.sndUna, SndNxt: c.sndNxt, SndWnd: c.sndWnd,
		IRS: c.irs, RcvNxt: c.rcvNxt, RcvWnd: c.rcvWindow(), SndMSS: c.sndMSS,
		SendQueued: c.snd.len(), RecvQueued: c.rcv.len(), UrgentQueued: c.urgent,
		RTO: c.rto, Retransmits: int(c.retries), Err: c.err,
		SegsIn: c.segsIn, SegsOut: c.segsOut, RetransSegs: c.retransSegs,
	}
	for t := range numTimers {
		st.Timers[t] = c.timerAt(t)
	}
	if c.hasRTT {
		st.SRTT = c.srtt
	}
	if c.ccOn {
		st.Cwnd = c.cwnd()
		// Only an algorithm already made: reading the table must not make
		// one for every idle connection.
		if rc, ok := c.cc.(cc.RateController); ok {
			st.PacingRate, st.Bandwidth = rc.PacingRate(), rc.Bandwidth()
		}
	}
	if c.sndNxt.LessThan(c.dataEnd()) && c.sndBuf.LessThanEq(c.sndNxt) {
		st.SendUnsent = int(c.sndNxt.Size(c.dataEnd()))
	} else if c.sndNxt.LessThan(c.sndBuf) {
		st.SendUnsent = c.snd.len()
	}
	return st
}

// dataEnd is the sequence number after the last byte the user wrote; the
// FIN, once queued, takes this number.
func (c *Conn) dataEnd() seqnum.Value { return c.sndBuf.Add(seqnum.Size(c.snd.len())) }

// finAcked reports whether the peer has acknowledged our FIN.
func (c *Conn) finAcked() bool { return c.finQueued && c.finSeq.LessThan(c.sndUna) }

// rcvWindow is RCV.WND: the free space of the receive queue, at most what
// the 16-bit window field carries at our scale, and a multiple of the
// scale so that what we advertise is exactly what we accept.
func (c *Conn) rcvWindow() uint32 {
	w := uint32(min(c.rcv.free(), 0xFFFF<<c.rcvShift))
	return w >> c.rcvShift << c.rcvShift
}

// offerWindow applies receiver-side silly window syndrome avoidance to
// the free space wnd (RFC 9293 §3.8.6.2.2): the right edge moves only when
// it can move by at least min(half the buffer, one full segment), or when
// the buffer is empty. It never moves left: a window once offered stays
// offered (RFC 9293 §3.8.6, RFC 7323 §2.4), rounded up to the window
// scale so the peer may send all it was told it could.
func (c *Conn) offerWindow(wnd uint32) uint32 {
	cur := c.advertised()
	unit := uint32(1)<<c.rcvShift - 1
	kept := (cur + unit) &^ unit
	if wnd <= kept {
		return kept
	}
	if step := uint32(min(c.rcv.capacity()/2, int(c.cfg.mss()))); c.rcv.len() > 0 && wnd-cur < step {
		return kept
	}
	return wnd
}

// advertised is what is left of the window we last offered: the distance
// from RCV.NXT to the right edge we advertised.
func (c *Conn) advertised() uint32 {
	if c.rcvNxt.LessThan(c.rcvAdv) {
		return min(uint32(c.rcvNxt.Size(c.rcvAdv)), uint32(c.rcv.capacity()))
	}
	return 0
}

// setState moves the connection to state s and reports the change.
func (c *Conn) setState(now time.Time, s State) {
	if s == c.state {
		return
	}
	from := c.state
	c.state = s
	if c.observing(EventState) {
		c.emit(Event{Time: now, Type: EventState, From: from, To: s, Cause: c.cause()})
	}
}

// cause describes what the current call is handling.
func (c *Conn) cause() Cause {
	switch c.curKind {
	case CauseSegment:
		return Cause{Kind: CauseSegment, Segment: c.curSeg}
	case CauseTimer:
		return Cause{Kind: CauseTimer, Timer: c.curTimer}
	}
	return Cause{Kind: CauseCall, Call: c.curCall}
}

// emit hands an event to the observer. The observer must not call back
// into the Conn.
func (c *Conn) emit(e Event) {
	e.Conn = c.id
	e.State = c.state
	p := eventPool.Get().(*Event)
	*p = e
	c.obs.Observe(p)
	*p = Event{}
	eventPool.Put(p)
}

// The events and segments handed to an Observer and an Output are borrowed
// from these pools for the call: kept in each Conn, they would cost every
// idle connection their memory, and built on the stack they would escape
// through the interfaces and cost an allocation per call.
var (
	eventPool   = sync.Pool{New: func() any { return new(Event) }}
	segmentPool = sync.Pool{New: func() any { return new(Segment) }}
)

// enterClosed ends the connection with err (nil for a normal end): the
// queues are flushed and every timer stops (RFC 9293 "delete the TCB").
func (c *Conn) enterClosed(now time.Time, err error) {
	if err != nil && c.err == nil {
		c.err = err
	}
	c.stopAllTimers(now)
	c.snd.reset()
	c.releaseLoss()
	if err != nil {
		c.rcv.reset()
	}
	c.ackNow = false
	c.setState(now, Closed)
}

// send fills in the fields every outgoing segment shares and hands it to
// the Output. Segments with ACK carry RCV.NXT, advertise the window (scaled
// but on SYNs, RFC 7323 §2.2) and carry the options in use; any ACK owed
// or delayed rides on them.
func (c *Conn) send(now time.Time, seg *Segment, why Reason, rtx bool) {
	if seg.Flags&header.RST == 0 {
		wnd := c.rcvWindow()
		if seg.Flags&header.SYN != 0 {
			seg.Window = uint16(min(wnd, 0xFFFF))
		} else {
			wnd = c.offerWindow(wnd)
			seg.Window = uint16(wnd >> c.rcvShift)
			c.segOptions(now, &seg.Options)
		}
		if seg.Flags&header.ACK != 0 {
			seg.Ack = c.rcvNxt
			c.rcvAdv = c.rcvNxt.Add(seqnum.Size(wnd))
			c.lastAckSent = c.rcvNxt
			c.ackNow = false
			c.ackPend = 0
			c.stopTimer(now, TimerDelayedAck)
		}
	}
	c.transmit(now, seg, why, rtx)
}

// transmit reports a segment and hands it to the Output as it is.
func (c *Conn) transmit(now time.Time, seg *Segment, why Reason, rtx bool) {
	c.segsOut++
	if rtx {
		c.retransSegs++
	}
	if c.observing(EventSegmentOut) {
		c.emit(Event{Time: now, Type: EventSegmentOut, Segment: seg.Info(), Reason: why, Retransmit: rtx})
	}
	if c.out != nil {
		p := segmentPool.Get().(*Segment)
		*p = *seg
		c.out.Send(c, p)
		*p = Segment{}
		segmentPool.Put(p)
	}
}

// sendControl sends a segment with no payload: <SEQ=seq><CTL=flags>.
func (c *Conn) sendControl(now time.Time, seq seqnum.Value, flags header.TCPFlags, why Reason) {
	tx := Segment{Seq: seq, Flags: flags}
	c.send(now, &tx, why, false)
}

// sendAck sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, the reply RFC 9293
// §3.10.7.4 gives in many places.
func (c *Conn) sendAck(now time.Time, why Reason) {
	c.sendControl(now, c.sndNxt, header.ACK, why)
}

// sendReset sends <SEQ=seq><CTL=RST>.
func (c *Conn) sendReset(now time.Time, seq seqnum.Value, why Reason) {
	c.sendControl(now, seq, header.RST, why)
}

// sendSyn sends our SYN (active open) or SYN,ACK (passive and simultaneous
// open), with the MSS option (RFC 9293 §3.7.1).
func (c *Conn) sendSyn(now time.Time, withAck bool, rtx bool) {
	tx := Segment{Seq: c.iss, Flags: header.SYN}
	why := ReasonOpen
	if withAck {
		tx.Flags |= header.ACK
		why = ReasonSynAck
	}
	if rtx {
		why = ReasonRetransmit
	}
	c.synOptions(now, &tx.Options, withAck)
	if rtx {
		c.karn()
	} else {
		c.startTiming(now, c.iss)
	}
	c.send(now, &tx, why, rtx)
	c.armRetransmit(now)
}
