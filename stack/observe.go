package stack

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/tcp"
)

// What a stack watches of every connection, whether or not anyone has
// subscribed: state changes (for the counters per transition and RFC
// 4022's tcpAttemptFails and tcpEstabResets) and drops (for the counters
// per reason). Both are rare next to segments, which are observed only
// while a subscriber asks for them.
const baseMask = tcp.EventMask(1<<tcp.EventState | 1<<tcp.EventDrop)

// subscriber is one Subscribe call's observer and the events it wants.
type subscriber struct {
	id   uint64
	o    tcp.Observer
	mask tcp.EventMask
}

// observation is the stack's side of watching its connections: the list
// of subscribers, published copy-on-write so that handing out an event
// takes no lock, and the counters that events feed.
type observation struct {
	mu   sync.Mutex                   // serializes Subscribe and cancel
	ids  uint64                       // the last subscriber id, under mu
	subs atomic.Pointer[[]subscriber] // the current list; nil when empty
	mask atomic.Uint32                // baseMask | every subscriber's mask
	gen  atomic.Uint64                // bumped when mask changes

	transMu sync.Mutex
	trans   map[TransitionKey]uint64

	attemptFails, estabResets atomic.Uint64
	dupAcks                   atomic.Uint64
	drops                     [numConnDropReasons]atomic.Uint64

	// retireMu makes a connection's retirement and a reading of the
	// totals exclusive, so a connection is counted once: live or retired.
	retireMu       sync.Mutex
	retiredRetrans uint64 // tcpRetransSegs of connections that are gone
}

// numConnDropReasons bounds tcp.Reason values: the drop counters are
// indexed by them.
const numConnDropReasons = 64

// TransitionKey identifies a kind of state change: from which state to
// which, and why. For a segment the cause keeps only the SYN, FIN, RST and
// ACK flags, so the set of keys stays small.
type TransitionKey struct {
	From, To tcp.State
	Kind     tcp.CauseKind
	Flags    header.TCPFlags // CauseSegment
	Call     tcp.Call        // CauseCall
	Timer    tcp.Timer       // CauseTimer
}

// Cause spells the key's cause as tcp.Cause does: "rcv SYN,ACK", "CLOSE",
// "timeout 2MSL".
func (k TransitionKey) Cause() string {
	c := tcp.Cause{Kind: k.Kind, Call: k.Call, Timer: k.Timer}
	c.Segment.Flags = k.Flags
	return c.String()
}

// Trigger classifies the key as tcp.TriggerOf classifies an event, for
// matching it with an edge of tcp.Edges.
func (k TransitionKey) Trigger() tcp.Trigger {
	e := tcp.Event{Type: tcp.EventState, From: k.From, To: k.To,
		Cause: tcp.Cause{Kind: k.Kind, Call: k.Call, Timer: k.Timer}}
	e.Cause.Segment.Flags = k.Flags
	return tcp.TriggerOf(&e)
}

// observer is the tcp.Observer every connection of a stack reports to.
type observer Stack

func (o *observer) Observe(e *tcp.Event) {
	s := (*Stack)(o)
	ob := &s.obs
	switch e.Type {
	case tcp.EventState:
		k := TransitionKey{From: e.From, To: e.To, Kind: e.Cause.Kind}
		switch e.Cause.Kind {
		case tcp.CauseSegment:
			k.Flags = e.Cause.Segment.Flags & (header.SYN | header.FIN | header.RST | header.ACK)
		case tcp.CauseCall:
			k.Call = e.Cause.Call
		case tcp.CauseTimer:
			k.Timer = e.Cause.Timer
		}
		ob.transMu.Lock()
		if ob.trans == nil {
			ob.trans = make(map[TransitionKey]uint64)
		}
		ob.trans[k]++
		ob.transMu.Unlock()
		// RFC 4022 §3: tcpAttemptFails counts SYN-SENT or SYN-RECEIVED
		// going to CLOSED, and SYN-RECEIVED going back to LISTEN;
		// tcpEstabResets counts ESTABLISHED or CLOSE-WAIT going straight
		// to CLOSED.
		switch {
		case e.To == tcp.Closed && (e.From == tcp.SynSent || e.From == tcp.SynReceived),
			e.From == tcp.SynReceived && e.To == tcp.Listen:
			ob.attemptFails.Add(1)
		case e.To == tcp.Closed && (e.From == tcp.Established || e.From == tcp.CloseWait):
			ob.estabResets.Add(1)
		}
	case tcp.EventDrop:
		if e.Reason == tcp.ReasonDupAck {
			ob.dupAcks.Add(1) // counted towards fast retransmit, not lost
		} else if int(e.Reason) < numConnDropReasons {
			ob.drops[e.Reason].Add(1)
		}
	}
	if subs := ob.subs.Load(); subs != nil {
		for _, sub := range *subs {
			if sub.mask.Has(e.Type) {
				sub.o.Observe(e)
			}
		}
	}
}

// Subscribe hands o every event of the kinds in mask, of every connection
// of the stack, from the moment each connection next does anything, until
// cancel is called. o is called on the goroutine of whatever drives the
// connection, with the connection's lock held: it must be quick, must not
// call into the stack, and must be safe for concurrent use. The *Event is
// only valid during the call.
func (s *Stack) Subscribe(o tcp.Observer, mask tcp.EventMask) (cancel func()) {
	ob := &s.obs
	ob.mu.Lock()
	ob.ids++
	sub := subscriber{id: ob.ids, o: o, mask: mask}
	s.publishLocked(func(list []subscriber) []subscriber { return append(list, sub) })
	ob.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			ob.mu.Lock()
			defer ob.mu.Unlock()
			s.publishLocked(func(list []subscriber) []subscriber {
				for i := range list {
					if list[i].id == sub.id {
						return slices.Delete(list, i, i+1)
					}
				}
				return list
			})
		})
	}
}

// publishLocked replaces the subscriber list with edit's result on a
// copy, and recomputes the mask connections are observed with.
func (s *Stack) publishLocked(edit func([]subscriber) []subscriber) {
	ob := &s.obs
	var cur []subscriber
	if p := ob.subs.Load(); p != nil {
		cur = *p
	}
	next := edit(slices.Clone(cur))
	mask := baseMask
	for _, sub := range next {
		mask |= sub.mask
	}
	if len(next) == 0 {
		ob.subs.Store(nil)
	} else {
		ob.subs.Store(&next)
	}
	if uint32(mask) != ob.mask.Load() {
		ob.mask.Store(uint32(mask))
		ob.gen.Add(1)
	}
}

// watch attaches the stack's observer to c's state machine with the mask
// in force now. c.mu is held, or c is not yet shared.
func (c *Conn) watch() {
	ob := &c.s.obs
	c.obsGen = ob.gen.Load()
	c.tc.SetObserverMask((*observer)(c.s), tcp.EventMask(ob.mask.Load()))
}

// Transitions returns how many times each kind of state change has
// happened on the stack's connections.
func (s *Stack) Transitions() map[TransitionKey]uint64 {
	ob := &s.obs
	ob.transMu.Lock()
	defer ob.transMu.Unlock()
	out := make(map[TransitionKey]uint64, len(ob.trans))
	for k, v := range ob.trans {
		out[k] = v
	}
	return out
}

// retire adds a departing connection's counters to the stack's totals.
func (s *Stack) retire(c *Conn) {
	s.obs.retireMu.Lock()
	defer s.obs.retireMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.retired {
		c.retired = true
		s.obs.retiredRetrans += c.tc.Status().RetransSegs
	}
}

// retransSegs totals tcpRetransSegs over the connections alive and gone.
func (s *Stack) retransSegs() uint64 {
	conns := s.Conns()
	s.obs.retireMu.Lock()
	defer s.obs.retireMu.Unlock()
	n := s.obs.retiredRetrans
	for _, c := range conns {
		c.mu.Lock()
		if !c.retired {
			n += c.tc.Status().RetransSegs
		}
		c.mu.Unlock()
	}
	return n
}

// ConnInfo is one row of the connection table: what `ss -tanoi` shows of
// a socket, in RFC 9293's words.
type ConnInfo struct {
	State         tcp.State
	Local, Remote netip.AddrPort // Remote is zero for a listener
	Passive       bool           // opened by a listener
	Orphan        bool           // closed by the application, still finishing

	// RecvQ is the bytes received and not yet read; for a listener, the
	// connections waiting to be accepted. SendQ is the bytes written and
	// not yet acknowledged; for a listener, its backlog.
	RecvQ, SendQ int

	// Timer is the timer `ss -o` would show, or none: the retransmission
	// timer (Retransmits counts its consecutive expiries), the persist
	// timer, TIME-WAIT's 2MSL, or keepalive. TimerLeft is its time left.
	Timer       tcp.Timer
	HasTimer    bool
	TimerLeft   time.Duration
	Retransmits int
	// Timers lists every running timer, in tcp.Timer order.
	Timers []TimerInfo

	SndWnd, RcvWnd uint32
	MSS            int
	Cwnd           int
	RTO, SRTT      time.Duration
	// PacingRate and Bandwidth are BBR's pacing rate and bottleneck
	// bandwidth estimate in bytes per second (ss -i's pacing_rate and
	// bbr:(bw)); zero for other congestion controls.
	PacingRate, Bandwidth float64

	SegsIn, SegsOut, RetransSegs uint64
	Err                          error // why the connection failed, once it has
}

// TimerInfo is a running timer and its time left.
type TimerInfo struct {
	Timer tcp.Timer
	Left  time.Duration
}

// shownTimers are the timers a connection table shows, in the order one
// is picked when several run; the delayed ACK and user timeout are left to
// the full list, as ss leaves them.
var shownTimers = [...]tcp.Timer{tcp.TimerRetransmit, tcp.TimerPersist, tcp.TimerTimeWait, tcp.TimerKeepAlive}

// Table returns the stack's connections and listeners as rows, sorted by
// local then remote address, with timers reckoned from now.
func (s *Stack) Table(now time.Time) []ConnInfo {
	conns, ls := s.tables()
	rows := make([]ConnInfo, 0, len(conns)+len(ls))
	for _, l := range ls {
		rows = append(rows, ConnInfo{State: tcp.Listen, Local: l.addr, RecvQ: len(l.accept), SendQ: l.backlog})
	}
	for _, c := range conns {
		c.mu.Lock()
		st := c.tc.Status()
		orphan := c.userClosed
		c.mu.Unlock()
		if st.State == tcp.Closed || st.State == tcp.Listen {
			continue // on its way out of the table
		}
		r := ConnInfo{
			State: st.State, Local: st.ID.Local, Remote: st.ID.Remote,
			Passive: st.Passive, Orphan: orphan,
			RecvQ: st.RecvQueued, SendQ: st.SendQueued,
			Retransmits: st.Retransmits,
			SndWnd:      st.SndWnd, RcvWnd: st.RcvWnd, MSS: st.SndMSS, Cwnd: st.Cwnd,
			PacingRate: st.PacingRate, Bandwidth: st.Bandwidth,
			RTO: st.RTO, SRTT: st.SRTT,
			SegsIn: st.SegsIn, SegsOut: st.SegsOut, RetransSegs: st.RetransSegs,
			Err: st.Err,
		}
		for t, at := range st.Timers {
			if !at.IsZero() {
				r.Timers = append(r.Timers, TimerInfo{Timer: tcp.Timer(t), Left: max(at.Sub(now), 0)})
			}
		}
		for _, t := range shownTimers {
			if at := st.Timers[t]; !at.IsZero() {
				r.Timer, r.HasTimer, r.TimerLeft = t, true, max(at.Sub(now), 0)
				break
			}
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b ConnInfo) int {
		if c := a.Local.Compare(b.Local); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
	return rows
}
