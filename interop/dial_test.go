//go:build linux

package interop

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// serveOne accepts one connection on ln and runs handle on it in the
// background; the returned channel yields handle's error.
func serveOne(ln *net.TCPListener, handle func(c *net.TCPConn) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(ioTimeout))
		c, err := ln.AcceptTCP()
		if err != nil {
			done <- fmt.Errorf("accept: %w", err)
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		done <- handle(c)
	}()
	return done
}

// TestDialKernelServer: `tcpstate dial` against a kernel server: 2 MB of
// stdin reach the server, which answers with their length and SHA-256
// after our FIN; dial prints the answer and exits 0.
func TestDialKernelServer(t *testing.T) {
	ns := newNS(t, dev1)
	ln := listen(t, ns, kernel1+":0")
	served := serveOne(ln, func(c *net.TCPConn) error {
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
		_, err = fmt.Fprintf(c, "%d %x\n", n, h.Sum(nil))
		return err
	})
	input := randomBytes(2<<20, 3)
	res := runDial(t, ns, dev1, stack1CIDR, ln.Addr().String(), bytes.NewReader(input))
	if res.err != nil {
		t.Fatalf("tcpstate dial: %v\nstderr:\n%s", res.err, res.stderr)
	}
	if err := <-served; err != nil {
		t.Errorf("kernel server: %v", err)
	}
	want := fmt.Sprintf("%d %x\n", len(input), sha256.Sum256(input))
	if string(res.stdout) != want {
		t.Errorf("dial printed %q, want %q", res.stdout, want)
	}
}

// TestHalfCloseDial: `tcpstate dial` sends its stdin and, at stdin's EOF,
// its FIN; the kernel server sends a greeting before that and 4 MB after
// it (in CLOSE-WAIT), then closes. dial prints all of it and exits 0.
func TestHalfCloseDial(t *testing.T) {
	ns := newNS(t, dev1)
	ln := listen(t, ns, kernel1+":0")
	const greeting = "hello, tcpstate\n"
	const after = 4 << 20
	input := []byte("a request, then EOF\n")
	served := serveOne(ln, func(c *net.TCPConn) error {
		if _, err := io.WriteString(c, greeting); err != nil {
			return err
		}
		got, err := io.ReadAll(c)
		if err != nil {
			return fmt.Errorf("reading until dial's FIN: %w", err)
		}
		if !bytes.Equal(got, input) {
			return fmt.Errorf("got %q from dial, want %q", got, input)
		}
		if s, err := tcpState(c); err != nil || s != linuxCloseWait {
			return fmt.Errorf("after dial's FIN the kernel socket is in state %d (%v), want CLOSE-WAIT (%d)", s, err, linuxCloseWait)
		}
		for sent := int64(0); sent < after; sent += 256 << 10 {
			if _, err := io.Copy(c, &patternReader{off: sent, n: sent + 256<<10}); err != nil {
				return fmt.Errorf("sending after dial's FIN: %w", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	})
	res := runDial(t, ns, dev1, stack1CIDR, ln.Addr().String(), bytes.NewReader(input))
	if res.err != nil {
		t.Fatalf("tcpstate dial: %v\nstderr:\n%s", res.err, res.stderr)
	}
	if err := <-served; err != nil {
		t.Errorf("kernel server: %v", err)
	}
	out, ok := bytes.CutPrefix(res.stdout, []byte(greeting))
	if !ok {
		t.Fatalf("dial's output does not start with the greeting: %q", res.stdout[:min(len(res.stdout), 40)])
	}
	w := newPatternChecker()
	w.Write(out)
	w.check(t, "data the server sent after dial's FIN", after)
}

// TestRefusedByKernel: `tcpstate dial` to a kernel port where nothing
// listens exits non-zero with "refused" on stderr, and prints nothing.
func TestRefusedByKernel(t *testing.T) {
	ns := newNS(t, dev1)
	// A port that was just listening and is no longer.
	ln := listen(t, ns, kernel1+":0")
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	res := runDial(t, ns, dev1, stack1CIDR, addr, strings.NewReader("hello\n"))
	if res.err == nil {
		t.Fatalf("tcpstate dial to %s, where nothing listens, exited 0\nstdout: %q\nstderr:\n%s", addr, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "refused") {
		t.Errorf("tcpstate dial to %s: %v, stderr %q; want \"refused\" in it", addr, res.err, res.stderr)
	}
	if lines := strings.Count(strings.TrimSpace(res.stderr), "\n"); lines > 0 {
		t.Errorf("stderr has %d lines, want one:\n%s", lines+1, res.stderr)
	}
	if len(res.stdout) != 0 {
		t.Errorf("stdout: %q, want nothing", res.stdout)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %v; an RST should end the attempt at once", d)
	}
}

// TestDialThroughKernel: tcpstate to tcpstate, the kernel forwarding
// between the two TUN devices: `tcpstate dial` on tun1 to `tcpstate serve
// --app echo` on tun0 gets its 1 MB back.
func TestDialThroughKernel(t *testing.T) {
	ns := newNS(t, dev0, dev1)
	ns.MustRun(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	startServe(t, ns, dev0, stack0CIDR, 7, "echo")
	input := randomBytes(1<<20, 11)
	res := runDial(t, ns, dev1, stack1CIDR, stack0+":7", bytes.NewReader(input))
	if res.err != nil {
		t.Fatalf("tcpstate dial: %v\nstderr:\n%s", res.err, res.stderr)
	}
	if i := firstDiff(res.stdout, input); i >= 0 {
		t.Errorf("echo through the kernel: got %d of %d bytes, first difference at %d", len(res.stdout), len(input), i)
	}
}
