package stack

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/tcp"
)

// benchBulk moves b.N chunks of 64 KiB from one stack to another over an
// in-memory pipe (MTU 1500), through net.Conn: the whole hot path of both
// stacks, segment building and parsing, demultiplexing, timers and the
// state machines.
func benchBulk(b *testing.B, watch func(a, bs *Stack)) {
	// Not Block mode: a writer blocked on a full queue while holding its
	// connection's lock deadlocks with the other stack's reader (see the
	// pipe package). A queue deep enough for an 8 MiB window drops
	// nothing in practice.
	ea, eb := pipe.New(pipe.Config{QueueLen: 8192})
	a, err := New(ea, Options{Addrs: []netip.Prefix{addrA}})
	if err != nil {
		b.Fatal(err)
	}
	bs, err := New(eb, Options{Addrs: []netip.Prefix{addrB}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	defer bs.Close()
	if watch != nil {
		watch(a, bs)
	}
	ln, err := bs.Listen("tcp", ":80")
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := a.Dial("tcp", "10.0.0.2:80")
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.(*Conn).CloseWrite()
	if n := <-got; n != int64(b.N)*int64(len(chunk)) {
		b.Fatalf("received %d bytes, want %d", n, int64(b.N)*int64(len(chunk)))
	}
	b.StopTimer()
	c.Close()
}

// BenchmarkBulk is bulk transfer between two stacks with nobody
// subscribed: state changes and drops are observed for the counters,
// nothing else. Build with -tags tcpstate_notrace for the baseline with
// no emit site compiled at all.
func BenchmarkBulk(b *testing.B) { benchBulk(b, nil) }

// BenchmarkBulkSubscribedStates is the same with a subscriber to state
// changes on both stacks, as `/events` has by default.
func BenchmarkBulkSubscribedStates(b *testing.B) {
	benchBulk(b, func(a, bs *Stack) {
		o := tcp.ObserverFunc(func(*tcp.Event) {})
		a.Subscribe(o, tcp.MaskOf(tcp.EventState))
		bs.Subscribe(o, tcp.MaskOf(tcp.EventState))
	})
}

// BenchmarkBulkSubscribedAll subscribes to every event, as --trace does,
// with an observer that does nothing: what building the events costs.
func BenchmarkBulkSubscribedAll(b *testing.B) {
	benchBulk(b, func(a, bs *Stack) {
		o := tcp.ObserverFunc(func(*tcp.Event) {})
		a.Subscribe(o, tcp.AllEvents)
		bs.Subscribe(o, tcp.AllEvents)
	})
}

var _ net.Conn = (*Conn)(nil)
