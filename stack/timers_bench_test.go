package stack

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkTimerSchedule measures what one timer operation costs with
// 65,536 connections' timers queued: each iteration takes a connection's
// timer off (as when it fires, or when a connection ends) and schedules it
// again at a random deadline between 1 ms and 10 s ahead, the range of
// delayed ACKs, retransmission timeouts and TIME-WAIT.
func BenchmarkTimerSchedule(b *testing.B) {
	const n = 1 << 16
	var q timerQueue
	q.init(&Stack{start: time.Now()})
	conns := make([]Conn, n)
	base := time.Now()
	r := rand.New(rand.NewPCG(1, 2))
	at := func() time.Time { return base.Add(time.Millisecond + time.Duration(r.Int64N(int64(10*time.Second)))) }
	for i := range conns {
		c := &conns[i]
		c.mu.Lock()
		q.schedule(c, at())
		c.mu.Unlock()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := &conns[i&(n-1)]
		c.mu.Lock()
		q.unschedule(c)
		q.schedule(c, at())
		c.mu.Unlock()
	}
}
