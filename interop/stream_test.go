//go:build linux

package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echo sends data on a kernel connection to an echo server while reading
// the echo, half-closes after the last byte, and returns what came back
// up to the server's FIN.
func echo(c *net.TCPConn, data []byte) ([]byte, error) {
	c.SetDeadline(time.Now().Add(ioTimeout))
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		sent <- err
	}()
	got, rerr := io.ReadAll(c)
	if werr := <-sent; werr != nil {
		return got, fmt.Errorf("writing: %w", werr)
	}
	if rerr != nil {
		return got, fmt.Errorf("reading the echo: %w", rerr)
	}
	return got, nil
}

// TestGoEcho: a kernel socket against `tcpstate serve --app echo`: bodies
// from one byte to 8 MB come back intact, and the server's FIN follows;
// with the TUN device's offloads and without.
func TestGoEcho(t *testing.T) {
	for _, m := range offloadModes {
		t.Run(m.name, func(t *testing.T) { testGoEcho(t, m.args) })
	}
}

func testGoEcho(t *testing.T, extra []string) {
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 7, "echo", extra...)
	d := dialer{ns: ns}
	for i, n := range []int{1, 1000, 65536, 1 << 20, 8 << 20} {
		c, err := d.dial(context.Background(), stack0+":7")
		if err != nil {
			t.Fatalf("dial %s:7: %v", stack0, err)
		}
		data := randomBytes(n, uint64(i+1))
		got, err := echo(c, data)
		c.Close()
		if err != nil {
			t.Fatalf("echo of %d bytes: %v (got %d back)", n, err, len(got))
		}
		if i := firstDiff(got, data); i >= 0 {
			t.Errorf("echo of %d bytes: got %d bytes back, first difference at byte %d", n, len(got), i)
		}
	}
}

// TestGoDiscard: a kernel socket sends 20 MB to `tcpstate serve --app
// discard`, half-closes, and gets the server's FIN with no data and no
// reset; with the TUN device's offloads and without.
func TestGoDiscard(t *testing.T) {
	for _, m := range offloadModes {
		t.Run(m.name, func(t *testing.T) { testGoDiscard(t, m.args) })
	}
}

func testGoDiscard(t *testing.T, extra []string) {
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 9, "discard", extra...)
	c, err := dialer{ns: ns}.dial(context.Background(), stack0+":9")
	if err != nil {
		t.Fatalf("dial %s:9: %v", stack0, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	const n = 20 << 20
	if m, err := io.Copy(c, &patternReader{n: n}); err != nil || m != n {
		t.Fatalf("sending %d bytes: sent %d: %v", n, m, err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("after our FIN, want the server's FIN; got %v", err)
	}
	if len(got) != 0 {
		t.Errorf("discard sent %d bytes back", len(got))
	}
}

// TestHalfCloseKernelClient: the kernel client sends its data and its FIN
// before reading anything, with a receive buffer far smaller than the
// data, so most of the echo can only be sent after the server has taken
// the FIN (CLOSE-WAIT, then LAST-ACK): it must all arrive, then the
// server's FIN.
func TestHalfCloseKernelClient(t *testing.T) {
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 7, "echo")
	d := dialer{ns: ns, control: func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
	}}
	c, err := d.dial(context.Background(), stack0+":7")
	if err != nil {
		t.Fatalf("dial %s:7: %v", stack0, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	const n = 96 << 10
	data := randomBytes(n, 7)
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	// Our FIN is acknowledged: the server has it, and has not yet sent
	// all the echo, since our receive buffer holds a few kilobytes.
	if err := waitState(c, linuxFinWait2, 10*time.Second); err != nil {
		t.Fatalf("waiting for the server to acknowledge our FIN: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the server runs into our closed window
	queued, err := inqueue(c)
	if err != nil {
		t.Fatal(err)
	}
	if queued >= n {
		t.Fatalf("all %d bytes of the echo were here before our FIN was acknowledged; the test tests nothing", queued)
	}
	t.Logf("%d of %d bytes of the echo had arrived when the server acknowledged our FIN", queued, n)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo after our FIN: %v (got %d of %d bytes)", err, len(got), n)
	}
	if i := firstDiff(got, data); i >= 0 {
		t.Errorf("echo after our FIN: got %d of %d bytes, first difference at byte %d", len(got), n, i)
	}
}

// TestRefusedByStack: a kernel socket connecting to a port of the stack's
// where nothing listens gets ECONNREFUSED (the stack's RST), while the
// listening port next to it works.
func TestRefusedByStack(t *testing.T) {
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 80, "echo")
	d := dialer{ns: ns}
	for _, port := range []int{81, 1, 65535} {
		c, err := d.dial(context.Background(), fmt.Sprintf("%s:%d", stack0, port))
		if err == nil {
			c.Close()
			t.Errorf("dial %s:%d, where nothing listens, succeeded", stack0, port)
			continue
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %s:%d, where nothing listens: %v, want ECONNREFUSED", stack0, port, err)
		}
	}
	c, err := d.dial(context.Background(), stack0+":80")
	if err != nil {
		t.Fatalf("dial %s:80 after the refusals: %v", stack0, err)
	}
	got, err := echo(c, []byte("still here"))
	c.Close()
	if err != nil || string(got) != "still here" {
		t.Errorf("echo after the refusals: %q, %v", got, err)
	}
}

// TestParallel: 20 transfers at once between kernel clients and two
// tcpstate processes — 10 curl downloads of different sizes from `serve
// --app http` on tun0 and 10 Go echo connections to `serve --app echo` on
// tun1 — each checked byte for byte.
func TestParallel(t *testing.T) {
	need(t, "curl", "curl")
	ns := newNS(t, dev0, dev1)
	startServe(t, ns, dev0, stack0CIDR, 80, "http")
	startServe(t, ns, dev1, stack1CIDR, 7, "echo")
	d := dialer{ns: ns}

	const each = 10
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 2*each)
	for i := range each {
		n := int64(2_000_000 + i*7919)
		wg.Go(func() {
			<-start
			url := fmt.Sprintf("http://%s/bytes/%d", stack0, n)
			w := newPatternChecker()
			if stderr, err := curl(t, ns, url, w, 30*time.Second); err != nil {
				errs <- fmt.Errorf("curl %s: %v: %s (after %d bytes)", url, err, stderr, w.n)
				return
			}
			if w.bad >= 0 || w.n != n {
				errs <- fmt.Errorf("curl %s: %d bytes, first wrong byte at %d (-1: none)", url, w.n, w.bad)
			}
		})
	}
	for i := range each {
		n := 1_000_000 + i*4099
		wg.Go(func() {
			<-start
			data := randomBytes(n, uint64(100+i))
			c, err := d.dial(context.Background(), stack1+":7")
			if err != nil {
				errs <- fmt.Errorf("echo %d: dial: %v", i, err)
				return
			}
			defer c.Close()
			got, err := echo(c, data)
			if err != nil {
				errs <- fmt.Errorf("echo %d: %v (got %d of %d bytes)", i, err, len(got), n)
				return
			}
			if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("echo %d: got %d of %d bytes, first difference at %d", i, len(got), n, firstDiff(got, data))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// inqueue returns how many bytes wait unread in a kernel socket.
func inqueue(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return 0, err
	}
	return n, ierr
}
