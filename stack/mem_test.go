package stack

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/tcp"
)

// TestStructSizes logs the size of a connection's two records, the state
// machine's and the runtime's, and checks that they stay within the
// budget issue 7 sets for memory per idle connection (about 1.4 KB per
// side, everything included).
func TestStructSizes(t *testing.T) {
	tc, sc := unsafe.Sizeof(tcp.Conn{}), unsafe.Sizeof(Conn{})
	t.Logf("unsafe.Sizeof: tcp.Conn %d B, stack.Conn %d B", tc, sc)
	if tc+sc > 1024 {
		t.Errorf("tcp.Conn (%d B) and stack.Conn (%d B) together exceed 1 KiB", tc, sc)
	}
}

// heapLive runs the collector until the heap settles and returns the live
// heap in bytes.
func heapLive() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// idlePairs opens n established connections from a to b over their pipe,
// spread over as many listening ports of b as the ephemeral range needs,
// with workers dialing concurrently, and returns both ends of each. It
// waits until every connection is accepted and no timer but keep-alive
// (off by default) is left to run, so the pairs are idle.
func idlePairs(tb testing.TB, a, b *Stack, n, workers int) (dialed, accepted []*Conn) {
	tb.Helper()
	perPort := int(a.opts.EphemeralPorts[1]-a.opts.EphemeralPorts[0]) + 1
	ports := (n + perPort - 1) / perPort
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		lns  []*Listener
		got  = make([]*Conn, 0, n)
		done = make(chan struct{})
	)
	for p := range ports {
		ln, err := b.ListenTCP(netip.AddrPortFrom(addrB.Addr(), uint16(1000+p)), 1024)
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.AcceptTCP()
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, c)
				if len(got) == n {
					close(done)
				}
				mu.Unlock()
			}
		}()
	}
	dialed = make([]*Conn, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var dw sync.WaitGroup
	for range workers {
		dw.Add(1)
		go func() {
			defer dw.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				c, err := a.DialTCP(ctx, netip.AddrPortFrom(addrB.Addr(), uint16(1000+i/perPort)))
				cancel()
				if err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					failed.Store(&err)
					return
				}
				dialed[i] = c
			}
		}()
	}
	dw.Wait()
	if e := failed.Load(); e != nil {
		tb.Fatal(*e)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		k := len(got)
		mu.Unlock()
		tb.Fatalf("only %d of %d connections accepted", k, n)
	}
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	// Let the last delayed ACKs go out.
	time.Sleep(100 * time.Millisecond)
	return dialed, got
}

// memStacks is two stacks over a pipe with the whole non-privileged port
// range for dialing, closed when the benchmark ends.
func memStacks(tb testing.TB) (a, b *Stack) {
	ea, eb := pipe.New(pipe.Config{QueueLen: 4096})
	opts := Options{EphemeralPorts: [2]uint16{1024, 65535}, Backlog: 1024}
	oa, ob := opts, opts
	oa.Addrs, ob.Addrs = []netip.Prefix{addrA}, []netip.Prefix{addrB}
	a, err := New(ea, oa)
	if err != nil {
		tb.Fatal(err)
	}
	b, err = New(eb, ob)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// benchIdle opens n idle established pairs and reports the Go heap each
// pair holds (both ends, the stacks' tables and timer entries included)
// and the time it took to open them.
func benchIdle(b *testing.B, n, workers int) {
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		sa, sb := memStacks(b)
		before := heapLive()
		b.StartTimer()
		start := time.Now()
		dialed, accepted := idlePairs(b, sa, sb, n, workers)
		open := time.Since(start)
		b.StopTimer()
		after := heapLive()
		if f := os.Getenv("TCPSTATE_HEAPPROFILE"); f != "" {
			writeHeapProfile(b, f)
		}
		b.ReportMetric(float64(int64(after)-int64(before))/float64(n), "heapB/pair")
		b.ReportMetric(float64(int64(after)-int64(before))/float64(2*n), "heapB/conn")
		b.ReportMetric(float64(open.Nanoseconds())/float64(n), "ns/open")
		b.ReportMetric(float64(unsafe.Sizeof(tcp.Conn{})), "B/tcp.Conn")
		b.ReportMetric(float64(unsafe.Sizeof(Conn{})), "B/stack.Conn")
		for _, c := range dialed {
			if c.tc.Readable() != 0 || c.tc.SendQueued() != 0 {
				b.Fatalf("connection %v is not idle", c.id)
			}
		}
		runtime.KeepAlive(dialed)
		runtime.KeepAlive(accepted)
		sa.Close()
		sb.Close()
		b.StartTimer()
	}
}

// writeHeapProfile writes the heap profile to file, for a look at what
// the idle connections hold (with -test.memprofilerate 1).
func writeHeapProfile(tb testing.TB, file string) {
	f, err := os.Create(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkIdlePairs opens 2,000 idle established connection pairs between
// two stacks over the in-memory pipe, as the bench module's heap workload
// does, and reports the heap per pair. Profile with
//
//	go test -c -o stack.test ./stack
//	TCPSTATE_HEAPPROFILE=mem.out ./stack.test -test.run '^$' -test.bench IdlePairs -test.benchtime 1x -test.memprofilerate 1
//	go tool pprof -sample_index=inuse_space -top stack.test mem.out
func BenchmarkIdlePairs(b *testing.B) { benchIdle(b, 2000, 1) }

// BenchmarkMillion holds TCPSTATE_MILLION_N established connections
// (default 20,000; set it to 1000000 for the million of issue 7) between
// two stacks in one process, over the in-memory pipe, and reports the heap
// per connection and the time to open them. The connections are idle: they
// hold no send or receive buffers. Run it alone:
//
//	TCPSTATE_MILLION_N=1000000 go test ./stack -run '^$' -bench Million -benchtime 1x -timeout 1h
func BenchmarkMillion(b *testing.B) {
	n := 20000
	if v := os.Getenv("TCPSTATE_MILLION_N"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k <= 0 {
			b.Fatalf("TCPSTATE_MILLION_N=%q: want a positive count", v)
		}
		n = k
	}
	benchIdle(b, n, 8)
}
