package stack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/tcp"
)

var (
	addrA  = netip.MustParsePrefix("10.0.0.1/24")
	addrB  = netip.MustParsePrefix("10.0.0.2/24")
	addr6A = netip.MustParsePrefix("fd00::1/64")
	addr6B = netip.MustParsePrefix("fd00::2/64")
)

// twoStacks joins two stacks with an in-memory pipe and stops them when
// the test ends.
func twoStacks(t *testing.T, cfg pipe.Config, opts Options) (a, b *Stack) {
	t.Helper()
	ea, eb := pipe.New(cfg)
	oa, ob := opts, opts
	oa.Addrs = []netip.Prefix{addrA, addr6A}
	ob.Addrs = []netip.Prefix{addrB, addr6B}
	var err error
	if a, err = New(ea, oa); err != nil {
		t.Fatal(err)
	}
	if b, err = New(eb, ob); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connected returns both ends of one connection between two fresh
// stacks: the dialer's and the accepted one.
func connected(t *testing.T, opts Options) (client, server net.Conn) {
	t.Helper()
	a, b := twoStacks(t, pipe.Config{}, opts)
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

func TestDialAcceptEcho(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "IPv4"
		dst := "10.0.0.2:7"
		if v6 {
			name, dst = "IPv6", "[fd00::2]:7"
		}
		t.Run(name, func(t *testing.T) {
			a, b := twoStacks(t, pipe.Config{}, Options{})
			ln, err := b.Listen("tcp", ":7")
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.Copy(c, c)
				c.Close()
			}()
			c, err := a.DialContext(ctxT(t), "tcp", dst)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
				t.Fatalf("LocalAddr is %T", c.LocalAddr())
			}
			if got := c.RemoteAddr().String(); got != dst {
				t.Fatalf("RemoteAddr %s, want %s", got, dst)
			}
			msg := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
			go func() {
				c.Write(msg)
				c.(*Conn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("echoed %d bytes, sent %d", len(got), len(msg))
			}
		})
	}
}

func TestRefused(t *testing.T) {
	a, _ := twoStacks(t, pipe.Config{}, Options{})
	_, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:9")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %v, want ECONNREFUSED", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("error %T %v is not a dial *net.OpError", err, err)
	}
}

func TestDeadlines(t *testing.T) {
	c, s := connected(t, Options{})
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the deadline did not wake the reader")
	}
	// Clearing the deadline lets the next read wait for data.
	c.SetReadDeadline(time.Time{})
	go s.Write([]byte("x"))
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after clearing the deadline: %d, %v", n, err)
	}
	// A deadline set while a read is blocked wakes it.
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Now())
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked read ignored a new deadline")
	}
}

func TestHalfCloseBothWays(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{})
	ln, _ := b.Listen("tcp", ":80")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c) // until the client's FIN
		c.Write(append([]byte("got "), req...))
	}()
	c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.(*Conn).CloseWrite()
	resp, err := io.ReadAll(c)
	if err != nil || string(resp) != "got hello" {
		t.Fatalf("reply %q, %v", resp, err)
	}
	c.Close()
	wg.Wait()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
}

func TestResetByLinger0(t *testing.T) {
	c, s := connected(t, Options{})
	c.(*Conn).SetLinger(0)
	c.Close()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := s.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's abort: %v, want ECONNRESET", err)
	}
}

func TestManyParallel(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{})
	ln, _ := b.Listen("tcp", ":80")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{byte(i)}, 100<<10)
			go func() { c.Write(msg); c.(*Conn).CloseWrite() }()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("conn %d: %d bytes, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
}

func TestLossyPipe(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{Loss: 0.02, Reorder: 0.02, Seed: 7}, Options{TCP: tcp.Config{MinRTO: 20 * time.Millisecond}})
	ln, _ := b.Listen("tcp", ":80")
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("lossy "), 50000)
	go func() { c.Write(msg); c.(*Conn).CloseWrite() }()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%d of %d bytes, %v", len(got), len(msg), err)
	}
}

func TestBadInputNoPanic(t *testing.T) {
	ea, eb := pipe.New(pipe.Config{})
	s, err := New(eb, Options{Addrs: []netip.Prefix{addrB}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer ea.Close()
	junk := [][]byte{{}, {0x45}, {0x60, 0, 0}, bytes.Repeat([]byte{0xff}, 60), make([]byte, 20)}
	ea.WritePackets(junk)
	time.Sleep(50 * time.Millisecond)
	if st := s.Stats(); st.DropMalformed == 0 {
		t.Fatalf("malformed packets were not counted: %+v", st)
	}
}

// TestFinWait2Orphan: a connection the application closed does not wait in
// FIN-WAIT-2 for ever when the peer never closes its side.
func TestFinWait2Orphan(t *testing.T) {
	c, _ := connected(t, Options{FinWait2Timeout: 100 * time.Millisecond}) // the peer never closes
	cc := c.(*Conn)
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	sawFW2 := false
	for time.Now().Before(deadline) {
		st := cc.Status().State
		sawFW2 = sawFW2 || st == tcp.FinWait2
		if st == tcp.Closed {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := cc.Status().State; st != tcp.Closed || !sawFW2 {
		t.Fatalf("state %v (saw FIN-WAIT-2: %v), want CLOSED after the orphan timeout", st, sawFW2)
	}
}

// TestAcceptQueueFull: connections arriving faster than the application
// accepts are held back, never reset: while the accept queue is full SYNs
// are dropped (the clients retry), as Linux does, and every connection is
// accepted in the end and carries data.
func TestAcceptQueueFull(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{Backlog: 2})
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	dialed := make(chan error, n)
	for range n {
		go func() {
			c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
			if err == nil {
				_, err = c.Write([]byte("x"))
			}
			dialed <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the queue fill
	for i := range n {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("accepted connection %d: %v", i, err)
		}
	}
	for range n {
		if err := <-dialed; err != nil {
			t.Fatal(err)
		}
	}
	st := b.Stats()
	if st.OutRsts != 0 || st.DropListenOverflow == 0 {
		t.Errorf("server sent %d RSTs and dropped %d SYNs; want none reset, some SYNs dropped", st.OutRsts, st.DropListenOverflow)
	}
}

// TestTimeWaitPortReuse: with one ephemeral port, a client that closed
// first holds it in TIME-WAIT; for the first second a new dial finds no
// port, after it the port is taken again (tcp_tw_reuse, RFC 6191) and the
// new connection carries data.
func TestTimeWaitPortReuse(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{EphemeralPorts: [2]uint16{40000, 40000}})
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	dial := func() (*Conn, error) {
		c, err := a.DialContext(ctxT(t), "tcp", "10.0.0.2:80")
		if err != nil {
			return nil, err
		}
		return c.(*Conn), nil
	}
	c1, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	c1.Write([]byte("one"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c1, buf); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for c1.Status().State != tcp.TimeWait {
		if time.Now().After(deadline) {
			t.Fatalf("first connection in %v, want TIME-WAIT", c1.Status().State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := dial(); err == nil || !strings.Contains(err.Error(), "EADDRNOTAVAIL") {
		t.Fatalf("dial within a second of TIME-WAIT: %v, want no free port", err)
	}
	time.Sleep(1100 * time.Millisecond)
	c2, err := dial()
	if err != nil {
		t.Fatalf("dial after a second of TIME-WAIT: %v", err)
	}
	if c2.LocalAddr().String() != c1.LocalAddr().String() {
		t.Fatalf("second connection from %v, want the reused %v", c2.LocalAddr(), c1.LocalAddr())
	}
	c2.Write([]byte("two"))
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "two" {
		t.Fatalf("reused port: read %q, %v", buf, err)
	}
	c2.Close()
}
