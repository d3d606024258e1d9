package stack

import (
	"container/heap"
	"sync"
	"time"
)

// timerQueue runs every connection's timers from one heap and one
// goroutine: no time.Timer per connection. A connection is in the heap at
// most once per deadline it asked for; when its deadline moves later (the
// retransmission timer restarts on every ACK) the earlier entry stays and,
// when it comes due, finds nothing to do and puts the connection back at
// its real deadline. Only a deadline that moves earlier costs a push.
type timerQueue struct {
	s    *Stack
	mu   sync.Mutex
	h    timerHeap
	wake chan struct{}
	quit chan struct{}
}

type timerEntry struct {
	at time.Time
	c  *Conn
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

func (q *timerQueue) init(s *Stack) {
	q.s = s
	q.wake = make(chan struct{}, 1)
	q.quit = make(chan struct{})
}

// schedule asks for c's timers to run at at (zero: none). c.mu is held.
func (q *timerQueue) schedule(c *Conn, at time.Time) {
	if at.IsZero() {
		return
	}
	q.mu.Lock()
	if !c.sched.IsZero() && !at.Before(c.sched) {
		q.mu.Unlock()
		return // an entry at or before at is already queued
	}
	c.sched = at
	heap.Push(&q.h, timerEntry{at: at, c: c})
	first := q.h[0].c == c && q.h[0].at.Equal(at)
	q.mu.Unlock()
	if first {
		signal(q.wake)
	}
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
		due = due[:0]
		for len(q.h) > 0 && !q.h[0].at.After(now) {
			e := heap.Pop(&q.h).(timerEntry)
			if e.c.sched.Equal(e.at) {
				e.c.sched = time.Time{}
				due = append(due, e.c)
			}
		}
		wait := time.Hour
		if len(q.h) > 0 {
			wait = q.h[0].at.Sub(now)
		}
		q.mu.Unlock()
		for _, c := range due {
			c.fire(now)
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
