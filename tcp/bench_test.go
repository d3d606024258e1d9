package tcp

import (
	"testing"
	"time"
)

// loop joins two Conns back to back: what one sends, the other receives at
// once. It copies nothing: segments are handed over while the sender's
// buffer still holds the payload, as a real link would copy them once.
type loop struct {
	peer *Conn
	now  *time.Time
	q    []Segment // segments waiting, so Input is never re-entered
	next int
}

func (l *loop) Send(c *Conn, seg *Segment) { l.q = append(l.q, *seg) }

// deliver hands the waiting segments to the peer; it reports whether there
// were any.
func (l *loop) deliver(now time.Time) bool {
	any := l.next < len(l.q)
	for l.next < len(l.q) {
		l.next++
		l.peer.Input(now, &l.q[l.next-1])
	}
	l.q, l.next = l.q[:0], 0
	return any
}

// pump delivers queued segments both ways until both sides are quiet.
func pump(now time.Time, a, b *loop) {
	for a.deliver(now) || b.deliver(now) {
	}
}

// settle pumps, and while either Conn has a timer due within d of *now
// (a delayed ACK, say) moves the clock to it, fires it and pumps again.
func settle(now *time.Time, d time.Duration, a, b *loop) {
	pump(*now, a, b)
	for {
		next := b.peer.Deadline()
		if da := a.peer.Deadline(); next.IsZero() || !da.IsZero() && da.Before(next) {
			next = da
		}
		if next.IsZero() || next.After(now.Add(d)) {
			return
		}
		*now = next
		a.peer.HandleTimeout(*now)
		b.peer.HandleTimeout(*now)
		pump(*now, a, b)
	}
}

type nopObserver struct{ n int }

func (o *nopObserver) Observe(e *Event) { o.n++ }

// loopPair returns two established Conns joined back to back.
func loopPair(tb testing.TB, cfg *Config) (now time.Time, ca, cb *Conn, la, lb *loop) {
	now = t0
	la, lb = &loop{now: &now}, &loop{now: &now}
	ca = NewConn(Tuple{Local: sockA, Remote: sockB}, cfg, la)
	cb = NewConn(Tuple{Local: sockB, Remote: sockA}, cfg, lb)
	la.peer, lb.peer = cb, ca
	la.q, lb.q = make([]Segment, 0, 64), make([]Segment, 0, 64)
	cb.Listen(now, 300)
	ca.Connect(now, 100)
	pump(now, la, lb)
	if ca.State() != Established || cb.State() != Established {
		tb.Fatal("no handshake")
	}
	return now, ca, cb, la, lb
}

func benchTransfer(b *testing.B, obs Observer) {
	benchTransferMask(b, obs, AllEvents)
}

func benchTransferMask(b *testing.B, obs Observer, mask EventMask) {
	now, ca, cb, la, lb := loopPair(b, &Config{})
	ca.SetObserverMask(obs, mask)
	cb.SetObserverMask(obs, mask)
	chunk := make([]byte, 16<<10)
	sink := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ca.Write(now, chunk)
		pump(now, la, lb)
		for cb.Readable() > 0 {
			cb.Read(now, sink)
		}
		settle(&now, 100*time.Millisecond, la, lb)
	}
}

// BenchmarkTransfer moves bulk data between two Conns with no observer:
// the state machine's own cost per byte. It allocates nothing per segment.
func BenchmarkTransfer(b *testing.B) { benchTransfer(b, nil) }

// BenchmarkTransferObserved is the same with an observer that counts
// events, to show what tracing costs when someone listens.
func BenchmarkTransferObserved(b *testing.B) { benchTransfer(b, &nopObserver{}) }

// BenchmarkTransferStateOnly observes only state changes and drops, as a
// stack does to keep its counters when no one has subscribed to the full
// event stream. Compare it with BenchmarkTransfer, and with BenchmarkTransfer
// built with -tags tcpstate_notrace (no emit site compiled at all).
func BenchmarkTransferStateOnly(b *testing.B) {
	benchTransferMask(b, &nopObserver{}, MaskOf(EventState, EventDrop))
}

// TestTransferAllocatesNothing: in steady state, sending, receiving and
// acknowledging data allocates nothing when nobody observes.
func TestTransferAllocatesNothing(t *testing.T) {
	now, ca, cb, la, lb := loopPair(t, &Config{})
	chunk := make([]byte, 8<<10)
	sink := make([]byte, 64<<10)
	step := func() {
		ca.Write(now, chunk)
		pump(now, la, lb)
		cb.Read(now, sink)
		settle(&now, 100*time.Millisecond, la, lb)
	}
	step() // buffers are allocated on first use
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("%v allocations per 8 KiB transferred, want 0", n)
	}
	cb.Read(now, sink)
	settle(&now, 100*time.Millisecond, la, lb)
	if cb.Readable() != 0 || ca.SendQueued() != 0 {
		t.Fatalf("transfer stalled: %d unread, %d unacknowledged", cb.Readable(), ca.SendQueued())
	}
}
