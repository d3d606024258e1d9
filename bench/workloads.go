package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The three services every peer offers, on these ports. The same
// handlers run on tcpstate's and gVisor's listeners in memory, and on
// kernel sockets for the loopback, veth and TUN peers.
const (
	portDiscard = 5001 // reads to EOF, then answers with the byte count
	portSource  = 5002 // writes until the client goes away
	portEcho    = 5003 // reads 64 bytes, echoes them, closes
)

// crrSize is the request and response size of connect-request-response.
const crrSize = 64

// chunk is the write and read size of the bulk workloads.
const chunk = 64 << 10

// ioTimeout bounds every single read or write of a workload, so that a
// stuck stack ends the measurement with an error instead of hanging.
const ioTimeout = 10 * time.Second

// listenFunc opens a listener for a port of a peer.
type listenFunc func(port int) (net.Listener, error)

// servers runs the three services on the listeners listen opens, until
// Close.
type servers struct {
	lns []net.Listener
	wg  sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startServers opens the three listeners and serves them.
func startServers(listen listenFunc) (*servers, error) {
	s := &servers{conns: make(map[net.Conn]struct{})}
	for _, svc := range []struct {
		port int
		fn   func(net.Conn)
	}{{portDiscard, serveDiscard}, {portSource, serveSource}, {portEcho, serveEcho}} {
		ln, err := listen(svc.port)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("listen on port %d: %w", svc.port, err)
		}
		s.lns = append(s.lns, ln)
		s.wg.Add(1)
		go s.accept(ln, svc.fn)
	}
	return s, nil
}

func (s *servers) accept(ln net.Listener, fn func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			fn(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close closes the listeners and every connection still open, and waits
// (a bounded time) for the handlers to end.
func (s *servers) Close() {
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// serveDiscard reads until EOF and answers with the number of bytes read,
// so that the sender can time the transfer to its last byte.
func serveDiscard(c net.Conn) {
	buf := make([]byte, chunk)
	var n uint64
	for {
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		m, err := c.Read(buf)
		n += uint64(m)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			break
		}
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], n)
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	c.Write(out[:])
}

// serveSource writes until the client closes or a write fails.
func serveSource(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		c.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// serveEcho reads one request, writes it back and closes.
func serveEcho(c net.Conn) {
	var buf [crrSize]byte
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return
	}
	c.Write(buf[:])
}

// dialFunc connects to a service port of the peer.
type dialFunc func(ctx context.Context, port int) (net.Conn, error)

// bulkSend writes for d, half-closes, and waits for the peer's byte
// count: the rate is what the peer received over the time to its last
// byte, in bits per second.
func bulkSend(ctx context.Context, dial dialFunc, d time.Duration) (float64, error) {
	c, err := dial(ctx, portDiscard)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	buf := make([]byte, chunk)
	start := time.Now()
	end := start.Add(d)
	var sent uint64
	for time.Now().Before(end) && ctx.Err() == nil {
		c.SetWriteDeadline(time.Now().Add(ioTimeout))
		n, err := c.Write(buf)
		sent += uint64(n)
		if err != nil {
			return 0, fmt.Errorf("write after %d bytes: %w", sent, err)
		}
	}
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return 0, fmt.Errorf("%T has no CloseWrite", c)
	}
	if err := cw.CloseWrite(); err != nil {
		return 0, fmt.Errorf("close write: %w", err)
	}
	var ack [8]byte
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("read the byte count: %w", err)
	}
	el := time.Since(start)
	got := binary.BigEndian.Uint64(ack[:])
	if got != sent {
		return 0, fmt.Errorf("peer received %d bytes of %d", got, sent)
	}
	return float64(got) * 8 / el.Seconds(), nil
}

// bulkRecv reads what the peer's source sends for d and returns the rate
// in bits per second.
func bulkRecv(ctx context.Context, dial dialFunc, d time.Duration) (float64, error) {
	c, err := dial(ctx, portSource)
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	buf := make([]byte, chunk)
	// The first byte starts the clock: the dial is not part of the rate.
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return 0, fmt.Errorf("first read: %w", err)
	}
	start := time.Now()
	end := start.Add(d)
	var got uint64
	for time.Now().Before(end) && ctx.Err() == nil {
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		n, err := c.Read(buf)
		got += uint64(n)
		if err != nil {
			return 0, fmt.Errorf("read after %d bytes: %w", got, err)
		}
	}
	return float64(got) * 8 / time.Since(start).Seconds(), nil
}

// crr runs connect-request-response for d on conc goroutines and returns
// transactions per second. A transaction is a dial, a 64-byte write, the
// 64-byte echo read back, and the close.
func crr(ctx context.Context, dial dialFunc, d time.Duration, conc int) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done atomic.Uint64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req, resp [crrSize]byte
			for i := range req {
				req[i] = byte(i)
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				if err := transact(ctx, dial, req[:], resp[:]); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("after %d transactions: %w", done.Load(), firstErr)
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

func transact(ctx context.Context, dial dialFunc, req, resp []byte) error {
	dctx, cancel := context.WithTimeout(ctx, ioTimeout)
	c, err := dial(dctx, portEcho)
	cancel()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(req) != string(resp) {
		return errors.New("echo differs from the request")
	}
	return nil
}
