//go:build linux

package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/internal/testenv"
)

// binary is the tcpstate command TestMain builds for the whole package.
var binary string

// The address plan, the same in every test's own namespace: each TUN
// device is a /24 with the kernel at .1 and a tcpstate process at .2.
const (
	dev0       = "tun0"
	kernel0    = "10.9.0.1"
	stack0     = "10.9.0.2"
	stack0CIDR = stack0 + "/24"

	dev1       = "tun1"
	kernel1    = "10.10.0.1"
	stack1     = "10.10.0.2"
	stack1CIDR = stack1 + "/24"
)

// Time limits. Every command a test starts is bounded by cmdTimeout; a
// test as a whole stays well under a minute.
const (
	cmdTimeout   = 60 * time.Second
	readyTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
	ioTimeout    = 30 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tcpstate-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Build only where namespaces can be made: elsewhere every test skips
	// (or, with CI=true, fails) in netns.ForTest, saying why.
	if netns.Available() == nil {
		binary = filepath.Join(dir, "tcpstate")
		if err := build(binary); err != nil {
			fmt.Fprintln(os.Stderr, "interop:", err)
			return 1
		}
	}
	return m.Run()
}

// build compiles ./cmd/tcpstate of the module this package is in.
func build(out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building tcpstate: no go command in PATH (%v); with sudo, keep PATH: sudo env PATH=\"$PATH\" go test ./interop", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "./cmd/tcpstate")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/tcpstate in %s: %v\n%s", root, err, b)
	}
	return nil
}

// moduleRoot finds the directory holding go.mod, from the working
// directory (the package's directory under go test) upward.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find go.mod above the working directory")
		}
		dir = parent
	}
}

// need fails the test in CI, or skips it elsewhere, when the command is
// not installed, naming the Debian package that has it.
func need(t *testing.T, command, pkg string) {
	t.Helper()
	testenv.Tool(t, command, pkg)
}

// newNS makes a namespace for the test (skipping or failing as
// netns.ForTest does) with the TUN devices named in devs set up: device
// i is dev0 (10.9.0.1/24 on the kernel side) or dev1 (10.10.0.1/24).
func newNS(t *testing.T, devs ...string) *netns.NS {
	t.Helper()
	ns := netns.ForTest(t)
	if binary == "" {
		t.Fatal("the tcpstate binary was not built, though namespaces can be made")
	}
	for _, dev := range devs {
		kernel := map[string]string{dev0: kernel0, dev1: kernel1}[dev]
		if kernel == "" {
			t.Fatalf("no address plan for device %q", dev)
		}
		ns.MustRun(t, "ip", "tuntap", "add", "dev", dev, "mode", "tun")
		ns.MustRun(t, "ip", "addr", "add", kernel+"/24", "dev", dev)
		ns.MustRun(t, "ip", "link", "set", dev, "up")
	}
	return ns
}

// syncBuffer is a bytes.Buffer safe for a process's output goroutine and
// the test reading it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a running `tcpstate serve`.
type server struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, once done is closed

	// stop ends the server with SIGTERM (SIGKILL after stopTimeout) and
	// reports an unclean end; the test's cleanup calls it too.
	stop     func()
	stopOnce sync.Once
}

// startServe runs `tcpstate serve --tun dev --addr addr --port port --app
// app` in ns, waits for its "ready", and stops it when the test ends:
// SIGTERM, which must end it cleanly (exit 0), or SIGKILL after
// stopTimeout.
func startServe(t *testing.T, ns *netns.NS, dev, addr string, port int, app string, extra ...string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	args := append([]string{"serve", "--tun", dev, "--addr", addr, "--port", fmt.Sprint(port), "--app", app}, extra...)
	cmd := ns.Command(ctx, binary, args...)
	s := &server{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	cmd.WaitDelay = stopTimeout
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start tcpstate serve: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.TrimSpace(sc.Text()) == "ready" {
				close(ready)
				signalled = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	s.stop = func() {
		s.stopOnce.Do(func() {
			select {
			case <-s.done:
				t.Errorf("tcpstate serve --app %s on %s ended before the test stopped it: %v\nstderr:\n%s", app, dev, s.err, s.stderr)
				return
			default:
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
				if s.err != nil {
					t.Errorf("tcpstate serve --app %s on %s, stopped with SIGTERM: %v (want exit 0)\nstderr:\n%s", app, dev, s.err, s.stderr)
				}
			case <-time.After(stopTimeout):
				cmd.Process.Kill()
				<-s.done
				t.Errorf("tcpstate serve --app %s on %s did not end within %v of SIGTERM; killed\nstderr:\n%s", app, dev, stopTimeout, s.stderr)
			}
		})
	}
	t.Cleanup(func() {
		defer cancel()
		s.stop()
	})
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("tcpstate serve --app %s on %s ended before printing ready: %v\nstderr:\n%s", app, dev, s.err, s.stderr)
	case <-time.After(readyTimeout):
		t.Fatalf("tcpstate serve --app %s on %s printed no \"ready\" within %v\nstderr:\n%s", app, dev, readyTimeout, s.stderr)
	}
	return s
}

// dialResult is how a `tcpstate dial` ended.
type dialResult struct {
	stdout []byte
	stderr string
	err    error // nil for exit 0
}

// runDial runs `tcpstate dial --tun dev --addr addr --to to` in ns with
// stdin as its input, and waits for it (at most cmdTimeout).
func runDial(t *testing.T, ns *netns.NS, dev, addr, to string, stdin io.Reader) dialResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := ns.Command(ctx, binary, "dial", "--tun", dev, "--addr", addr, "--to", to, "--timeout", "10s")
	var stdout bytes.Buffer
	var stderr syncBuffer
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = stopTimeout
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("tcpstate dial --to %s did not end within %v (%v)\nstderr:\n%s", to, cmdTimeout, err, stderr.String())
	}
	return dialResult{stdout: stdout.Bytes(), stderr: stderr.String(), err: err}
}

// command returns a command run in ns under a context that ends with the
// test or after cmdTimeout; output it does not redirect goes to nothing.
func command(t *testing.T, ns *netns.NS, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	t.Cleanup(cancel)
	cmd := ns.Command(ctx, name, args...)
	cmd.WaitDelay = stopTimeout
	return cmd
}

// dialer makes kernel TCP sockets inside ns. Control, if set, runs on
// each socket before it connects (to set SO_RCVBUF, say).
type dialer struct {
	ns      *netns.NS
	control func(fd int) error
}

// dial connects a kernel socket made inside the namespace to address.
func (d dialer) dial(ctx context.Context, address string) (*net.TCPConn, error) {
	var c net.Conn
	nd := net.Dialer{Timeout: 10 * time.Second}
	if d.control != nil {
		nd.Control = func(network, address string, rc syscall.RawConn) error {
			var cerr error
			if err := rc.Control(func(fd uintptr) { cerr = d.control(int(fd)) }); err != nil {
				return err
			}
			return cerr
		}
	}
	err := d.ns.Do(func() error {
		var err error
		c, err = nd.DialContext(ctx, "tcp", address)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// dialContext has the shape of http.Transport.DialContext.
func (d dialer) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.dial(ctx, address)
}

// listen makes a kernel listening socket inside ns, closed when the test
// ends.
func listen(t *testing.T, ns *netns.NS, address string) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", address)
		return err
	})
	if err != nil {
		t.Fatalf("kernel listener on %s: %v", address, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// Linux's TCP states as TCP_INFO reports them (include/net/tcp_states.h).
const (
	linuxEstablished = 1
	linuxFinWait2    = 5
	linuxCloseWait   = 8
)

// tcpState returns the kernel's state of a socket.
func tcpState(c *net.TCPConn) (uint8, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, ierr
	}
	return info.State, nil
}

// waitState waits, at most d, for the kernel socket to reach state.
func waitState(c *net.TCPConn, state uint8, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		s, err := tcpState(c)
		if err != nil {
			return err
		}
		if s == state {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("socket in Linux TCP state %d after %v, want %d", s, d, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The body of the http app's /bytes/N: byte i is i mod 251.
const period = 251

// patternBlock holds the pattern from offset 0 for many periods, so that
// checking or making it is a slice compare or copy.
var patternBlock = func() []byte {
	b := make([]byte, period*256)
	for i := range b {
		b[i] = byte(i % period)
	}
	return b
}()

// patternChecker is a writer that checks what it is given against the
// pattern, from offset 0, without keeping it.
type patternChecker struct {
	n   int64 // bytes seen
	bad int64 // offset of the first wrong byte, or -1
}

func newPatternChecker() *patternChecker { return &patternChecker{bad: -1} }

func (w *patternChecker) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 && w.bad < 0 {
		start := int(w.n % period)
		k := min(len(p), len(patternBlock)-start)
		if !bytes.Equal(p[:k], patternBlock[start:start+k]) {
			for i := range k {
				if p[i] != patternBlock[start+i] {
					w.bad = w.n + int64(i)
					break
				}
			}
		}
		w.n += int64(k)
		p = p[k:]
	}
	w.n += int64(len(p)) // past a mismatch, only count
	return total, nil
}

// check fails t unless exactly want bytes of the pattern were written.
func (w *patternChecker) check(t *testing.T, what string, want int64) {
	t.Helper()
	if w.bad >= 0 {
		t.Errorf("%s: byte %d differs from the pattern (byte i = i mod %d)", what, w.bad, period)
	}
	if w.n != want {
		t.Errorf("%s: got %d bytes, want %d", what, w.n, want)
	}
}

// patternReader yields n bytes of the pattern.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	start := int(r.off % period)
	k := min(int64(len(p)), r.n-r.off, int64(len(patternBlock)-start))
	copy(p, patternBlock[start:start+int(k)])
	r.off += k
	return int(k), nil
}

// randomBytes returns n bytes that are not the pattern, so that a test
// of a stream that echoes them cannot pass on a misplaced block.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}

// firstDiff returns the offset of the first difference between a and b,
// or -1 if they are equal.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestPatternHelpers checks the checkers, without root: the pattern
// reader and checker agree, and the checker finds a wrong byte and a
// wrong length.
func TestPatternHelpers(t *testing.T) {
	const n = 100_000
	w := newPatternChecker()
	if _, err := io.CopyBuffer(w, &patternReader{n: n}, make([]byte, 777)); err != nil {
		t.Fatal(err)
	}
	if w.bad != -1 || w.n != n {
		t.Fatalf("pattern read back: %d bytes, first bad %d", w.n, w.bad)
	}
	b, _ := io.ReadAll(&patternReader{n: n})
	for i, c := range b {
		if c != byte(i%period) {
			t.Fatalf("patternReader: byte %d is %d", i, c)
		}
	}
	b[54321]++
	w = newPatternChecker()
	w.Write(b[:50000])
	w.Write(b[50000:])
	if w.bad != 54321 || w.n != n {
		t.Errorf("checker: first bad %d, want 54321; %d bytes", w.bad, w.n)
	}
	if d := firstDiff([]byte("abc"), []byte("abd")); d != 2 {
		t.Errorf("firstDiff = %d, want 2", d)
	}
	if d := firstDiff([]byte("ab"), []byte("abc")); d != 2 {
		t.Errorf("firstDiff of a prefix = %d, want 2", d)
	}
	if d := firstDiff(randomBytes(10, 1), randomBytes(10, 1)); d != -1 {
		t.Errorf("firstDiff of equal slices = %d", d)
	}
}
