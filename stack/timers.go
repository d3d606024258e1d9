package stack

import (
	"math/bits"
	"sync"
	"time"
)

// timerQueue runs every connection's timers from one hierarchical timing
// wheel and one goroutine: no time.Timer per connection, and scheduling,
// moving and taking off a timer each cost O(1) however many connections
// there are (Varghese and Lauck, "Hashed and Hierarchical Timing Wheels",
// SOSP 1987, scheme 7; Linux's kernel/time/timer.c before 4.8 cascaded the
// same way).
//
// Time is counted in ticks of wheelTick from the stack's start. The wheel
// has wheelLevels levels of wheelSlots slots; a slot of level k spans
// wheelSlots^k ticks. A connection waits in the slot of the lowest level
// whose span reaches its deadline; when time reaches a slot of a higher
// level, its connections are cascaded into the lower levels by their exact
// deadlines, so a timer fires in the first tick at or after its deadline,
// however far ahead it was set: never early, late by less than a tick.
// Each connection is a node of its slot's doubly linked list (the links
// are fields of Conn), so the wheel allocates nothing.
//
// A connection is queued at most once. When its deadline moves later (the
// retransmission timer restarts on every ACK) the earlier entry stays and,
// when it comes due, finds nothing to do and puts the connection back at
// its real deadline; only a deadline that moves earlier moves the entry.
type timerQueue struct {
	s    *Stack
	mu   sync.Mutex
	w    wheel
	wake chan struct{}
	quit chan struct{}
}

// wheelTick is the wheel's resolution: the RTO floor (200 ms) and the
// delayed ACK (40 ms) are many ticks long.
const wheelTick = time.Millisecond

const (
	wheelBits   = 8
	wheelSlots  = 1 << wheelBits
	wheelLevels = 4 // 256^4 ticks of 1 ms: 49 days; later deadlines wait in the top level
	wheelMask   = wheelSlots - 1
	wheelWords  = wheelSlots / 64
)

// wheel is the timing wheel proper; timerQueue.mu guards it.
type wheel struct {
	origin time.Time // tick 0
	now    uint64    // the next tick to process: every earlier one is done
	n      int       // connections queued
	slots  [wheelLevels][wheelSlots]*Conn
	// used has a bit set for every slot that holds a connection, so the
	// next busy slot is found a word at a time.
	used [wheelLevels][wheelWords]uint64
}

// timerLink is a connection's place in the wheel, under timerQueue.mu.
type timerLink struct {
	next, prev *Conn
	at         uint64 // the tick the connection is due; valid when queued
	slot       int32  // 1+level*wheelSlots+slot, or 0 when not queued
}

func (q *timerQueue) init(s *Stack) {
	q.s = s
	q.w.origin = s.start
	q.wake = make(chan struct{}, 1)
	q.quit = make(chan struct{})
}

// tickOf returns the first tick at or after t.
func (w *wheel) tickOf(t time.Time) uint64 {
	d := t.Sub(w.origin)
	if d <= 0 {
		return 0
	}
	return uint64((d + wheelTick - 1) / wheelTick)
}

// timeOf returns when tick k begins.
func (w *wheel) timeOf(k uint64) time.Time {
	return w.origin.Add(time.Duration(k) * wheelTick)
}

// insert queues c, not queued, at c.tl.at.
func (w *wheel) insert(c *Conn) {
	at := max(c.tl.at, w.now)
	c.tl.at = at
	delta := at - w.now
	level := 0
	for level < wheelLevels-1 && delta >= 1<<(wheelBits*(level+1)) {
		level++
	}
	if level == wheelLevels-1 && delta >= 1<<(wheelBits*wheelLevels) {
		// Beyond the wheel: wait in the top level's last slot before
		// the horizon and be cascaded again from there.
		at = w.now + 1<<(wheelBits*wheelLevels) - 1
	}
	slot := int(at>>(wheelBits*level)) & wheelMask
	head := &w.slots[level][slot]
	c.tl.prev, c.tl.next = nil, *head
	if *head != nil {
		(*head).tl.prev = c
	}
	*head = c
	w.used[level][slot/64] |= 1 << (slot % 64)
	c.tl.slot = int32(1 + level*wheelSlots + slot)
	w.n++
}

// remove takes c, queued, out of its slot.
func (w *wheel) remove(c *Conn) {
	level, slot := int(c.tl.slot-1)/wheelSlots, int(c.tl.slot-1)%wheelSlots
	if c.tl.prev != nil {
		c.tl.prev.tl.next = c.tl.next
	} else {
		w.slots[level][slot] = c.tl.next
	}
	if c.tl.next != nil {
		c.tl.next.tl.prev = c.tl.prev
	}
	if w.slots[level][slot] == nil {
		w.used[level][slot/64] &^= 1 << (slot % 64)
	}
	c.tl.next, c.tl.prev, c.tl.slot = nil, nil, 0
	w.n--
}

// take empties a slot and returns its list.
func (w *wheel) take(level, slot int) *Conn {
	head := w.slots[level][slot]
	w.slots[level][slot] = nil
	w.used[level][slot/64] &^= 1 << (slot % 64)
	for c := head; c != nil; c = c.tl.next {
		c.tl.slot = 0
		w.n--
	}
	return head
}

// nextBusy returns how many slots after slot from (0 to wheelSlots-1,
// wrapping) the first used slot of level is, or -1 when it has none.
func (w *wheel) nextBusy(level, from int) int {
	for i := 0; i <= wheelWords; i++ {
		word := (from/64 + i) % wheelWords
		bitsSet := w.used[level][word]
		if i == 0 {
			bitsSet &= ^uint64(0) << (from % 64)
		} else if i == wheelWords {
			bitsSet &= 1<<(from%64) - 1
		}
		if bitsSet != 0 {
			s := word*64 + bits.TrailingZeros64(bitsSet)
			return (s - from + wheelSlots) % wheelSlots
		}
	}
	return -1
}

// next returns the next tick at which the wheel has work to do (a level-0
// slot to fire, a higher slot to cascade), and false when it is empty.
func (w *wheel) next() (uint64, bool) {
	if w.n == 0 {
		return 0, false
	}
	best, ok := uint64(0), false
	for level := range wheelLevels {
		shift := uint(wheelBits * level)
		cur := int(w.now>>shift) & wheelMask
		d := w.nextBusy(level, cur)
		if d < 0 {
			continue
		}
		var t uint64
		if level == 0 {
			t = w.now + uint64(d)
		} else {
			// A higher slot is cascaded when time reaches its start. The
			// current index holds only what is a full turn ahead.
			if d == 0 && w.now&(1<<shift-1) != 0 {
				d = wheelSlots
			}
			t = (w.now>>shift + uint64(d)) << shift
		}
		if !ok || t < best {
			best, ok = t, true
		}
	}
	return best, ok
}

// advance processes every tick up to and including upTo, skipping those
// with nothing to do, and appends the connections due to due.
func (w *wheel) advance(upTo uint64, due []*Conn) []*Conn {
	for {
		t, ok := w.next()
		if !ok || t > upTo {
			if upTo+1 > w.now {
				w.now = upTo + 1
			}
			return due
		}
		w.now = t
		// Cascade from the top down, so what a level hands down is
		// cascaded again by the levels below when it is due this tick.
		for level := wheelLevels - 1; level >= 1; level-- {
			shift := uint(wheelBits * level)
			if t&(1<<shift-1) != 0 {
				continue
			}
			for c := w.take(level, int(t>>shift)&wheelMask); c != nil; {
				next := c.tl.next
				w.insert(c)
				c = next
			}
		}
		for c := w.take(0, int(t)&wheelMask); c != nil; {
			next := c.tl.next
			c.tl.next, c.tl.prev = nil, nil
			if c.tl.at > t {
				w.insert(c) // not due yet (cannot happen; never fire early)
			} else {
				due = append(due, c)
			}
			c = next
		}
		w.now = t + 1
	}
}

// schedule asks for c's timers to run at at (zero: none). c.mu is held.
func (q *timerQueue) schedule(c *Conn, at time.Time) {
	if at.IsZero() {
		return
	}
	q.mu.Lock()
	k := q.w.tickOf(at)
	queued := c.tl.slot != 0
	if queued && c.tl.at <= k {
		q.mu.Unlock()
		return // an entry at or before at is already queued
	}
	if queued {
		q.w.remove(c)
	}
	first := true
	if t, ok := q.w.next(); ok && t <= k {
		first = false
	}
	c.tl.at = k
	q.w.insert(c)
	q.mu.Unlock()
	if first {
		signal(q.wake)
	}
}

// unschedule takes c's timers off the wheel, as when it leaves the stack.
func (q *timerQueue) unschedule(c *Conn) {
	q.mu.Lock()
	if c.tl.slot != 0 {
		q.w.remove(c)
	}
	q.mu.Unlock()
}

func (q *timerQueue) stop() { close(q.quit) }

// run fires due connections' timers until the stack closes.
func (q *timerQueue) run() {
	defer q.s.done.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var due []*Conn
	for {
		q.mu.Lock()
		now := time.Now()
		// The ticks that have begun by now.
		cur := uint64(0)
		if d := now.Sub(q.w.origin); d > 0 {
			cur = uint64(d / wheelTick)
		}
		due = q.w.advance(cur, due[:0])
		wait := time.Hour
		if k, ok := q.w.next(); ok {
			wait = q.w.timeOf(k).Sub(now)
		}
		q.mu.Unlock()
		for i, c := range due {
			c.fire(now)
			due[i] = nil
		}
		if len(due) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-q.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-q.quit:
			return
		}
	}
}
