package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/admin"
	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/tun"
	"github.com/tcpstate/tcpstate/stack"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// stackFlags are the flags serve and dial share: which TUN device, the
// stack's own address on it, and how to watch it.
type stackFlags struct {
	dev   string
	addr  string
	admin string
	trace string
	pcap  string

	noOffload bool
	cc        string

	cpuProfile, memProfile string
}

func (f *stackFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dev, "tun", "", "TUN device to attach to (created and configured on the kernel side beforehand)")
	fl.StringVar(&f.addr, "addr", "", "the stack's own address on the device, as IP/PREFIX (for example 10.9.0.2/24)")
	fl.StringVar(&f.admin, "admin", "", "serve /metrics, /conns, /stats, /transitions and /events over HTTP on ADDR (for example 127.0.0.1:9180)")
	fl.StringVar(&f.trace, "trace", "", "write every event (segments, state changes, timers) to FILE as JSON lines")
	fl.StringVar(&f.pcap, "pcap", "", "write every packet sent and received to FILE as pcapng (with offloads, the large TCP segments as the device carries them)")
	fl.StringVar(&f.cc, "cc", "", "congestion control: cubic (the default), newreno or bbr (paced, for long lossy paths)")
	fl.BoolVar(&f.noOffload, "no-offload", false, "open the TUN device without the kernel's offloads (TSO, checksums): MTU-sized packets only")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to FILE (read it with go tool pprof)")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a heap profile to FILE at the end of the run (go tool pprof)")
}

// profile starts the profiles the flags ask for; the returned stop writes
// them out.
func (f *stackFlags) profile() (stop func() error, err error) {
	var cpu *os.File
	if f.cpuProfile != "" {
		if cpu, err = os.Create(f.cpuProfile); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	return func() error {
		var first error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				first = fmt.Errorf("--cpuprofile %s: %w", f.cpuProfile, err)
			}
		}
		if f.memProfile != "" {
			runtime.GC() // the heap as it stands, not as it stood at the last GC
			mem, err := os.Create(f.memProfile)
			if err == nil {
				err = pprof.WriteHeapProfile(mem)
				if cerr := mem.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil && first == nil {
				first = fmt.Errorf("--memprofile %s: %w", f.memProfile, err)
			}
		}
		return first
	}, nil
}

// running is a stack started from the flags, with whatever watches it.
type running struct {
	*stack.Stack
	stop []func() error // run in reverse order by close
}

// close stops the stack and the watchers, flushing the files, and returns
// the first error.
func (r *running) close() error {
	var first error
	for i := len(r.stop) - 1; i >= 0; i-- {
		if err := r.stop[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// open checks the flags and starts a stack on the TUN device, with the
// admin endpoint, trace and capture the flags ask for. Messages about the
// watchers go to stderr.
func (f *stackFlags) open(ctx context.Context, stderr io.Writer) (*running, error) {
	if f.dev == "" {
		return nil, errors.New("--tun is required: the TUN device to attach to")
	}
	if f.addr == "" {
		return nil, errors.New("--addr is required: the stack's address as IP/PREFIX")
	}
	prefix, err := netip.ParsePrefix(f.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: want IP/PREFIX, for example 10.9.0.2/24", f.addr)
	}
	tcfg := tcp.Config{CongestionControl: f.cc}
	if err := tcfg.Validate(); err != nil {
		return nil, fmt.Errorf("--cc: %w", err)
	}
	r := &running{}
	fail := func(err error) (*running, error) {
		r.close()
		return nil, err
	}
	stopProfiles, err := f.profile()
	if err != nil {
		return nil, err
	}
	// First in the list, so the last to run: the profiles cover it all.
	r.stop = append(r.stop, stopProfiles)
	var ep link.Endpoint
	dev, err := tun.Open(f.dev, tun.Options{NoCreate: true, NoOffload: f.noOffload})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("TUN device %q does not exist (create it with: ip tuntap add dev %s mode tun)", f.dev, f.dev))
		}
		return fail(err)
	}
	ep = dev
	if f.pcap != "" {
		file, err := os.Create(f.pcap)
		if err != nil {
			dev.Close()
			return fail(fmt.Errorf("--pcap: %w", err))
		}
		// The tap passes the device's offload path through (it is a
		// link.Offloader whose Offload is the device's), so capturing
		// keeps the 64 KiB segments and records them as they cross;
		// only --no-offload makes the packets MTU-sized.
		tap := link.TapNg(dev, bufio.NewWriterSize(file, 256<<10))
		ep = tap
		stopFlush := flushEvery(time.Second, func() { tap.Flush() })
		// Registered first, so it runs last: the stack's Close has closed
		// the tap, which flushed the capture.
		r.stop = append(r.stop, func() error {
			stopFlush()
			return finishFile("--pcap", file, tap.Flush())
		})
	}
	start := time.Now()
	st, err := stack.New(ep, stack.Options{Addrs: []netip.Prefix{prefix}, TCP: tcfg, Logf: func(format string, args ...any) {
		fmt.Fprintf(stderr, "tcpstate: "+format+"\n", args...)
	}})
	if err != nil {
		ep.Close()
		return fail(err)
	}
	r.Stack = st
	r.stop = append(r.stop, st.Close)
	if f.trace != "" {
		w, err := os.Create(f.trace)
		if err != nil {
			return fail(fmt.Errorf("--trace: %w", err))
		}
		ew := trace.NewEventWriter(w, "tcpstate", prefix.Addr(), start)
		cancel := st.Subscribe(ew, tcp.AllEvents)
		stopFlush := flushEvery(time.Second, func() { ew.Flush() })
		// Registered after the stack, so it runs before the stack
		// closes: the trace ends with the connections' last events.
		r.stop = append(r.stop, func() error {
			stopFlush()
			cancel()
			return finishFile("--trace", w, ew.Flush())
		})
	}
	if f.admin != "" {
		actx, cancel := context.WithCancel(ctx)
		addr, _, err := admin.New(st, admin.Options{Start: start}).ListenAndServe(actx, f.admin)
		if err != nil {
			cancel()
			return fail(fmt.Errorf("--admin: %w", err))
		}
		fmt.Fprintf(stderr, "admin endpoint on http://%s/\n", addr)
		r.stop = append(r.stop, func() error { cancel(); return nil })
	}
	return r, nil
}

// finishFile closes a file the flag wrote, after its last flush, and
// reports the first of the flush's and the close's errors, naming both.
func finishFile(flag string, file *os.File, flushErr error) error {
	err := flushErr
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", flag, file.Name(), err)
	}
	return nil
}

// flushEvery calls flush every d until the returned stop is called, so a
// killed process leaves most of its trace or capture readable.
func flushEvery(d time.Duration, flush func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				flush()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

func newServeCmd() *cobra.Command {
	var (
		sf   stackFlags
		port int
		app  string
	)
	cmd := &cobra.Command{
		Use:   "serve --tun DEV --addr IP/PREFIX --port P --app echo|discard|http",
		Short: "Serve on a TUN device with the tcpstate stack",
		Long: "serve attaches the stack to a TUN device, takes IP as its own address, listens\n" +
			"on port P and serves until killed. It prints \"ready\" once it listens.\n\n" +
			"Apps: echo (echo bytes back; after the peer's FIN, finish echoing and close),\n" +
			"discard (read and drop), http (HTTP/1.1: GET / answers \"ok\\n\";\n" +
			"GET /bytes/N answers N bytes where byte i is i mod 251).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if port < 1 || port > 65535 {
				return fmt.Errorf("--port %d: want a port from 1 to 65535", port)
			}
			handler, err := appHandler(app)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := sf.open(ctx, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer func() {
				if cerr := st.close(); err == nil {
					err = cerr
				}
			}()
			ln, err := st.Listen("tcp", ":"+strconv.Itoa(port))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ready")
			go func() {
				<-ctx.Done()
				ln.Close()
			}()
			err = handler(ln)
			if ctx.Err() != nil {
				err = nil // killed: a normal end
			}
			return err
		},
	}
	sf.add(cmd)
	cmd.Flags().IntVar(&port, "port", 0, "port to listen on")
	cmd.Flags().StringVar(&app, "app", "echo", "what to serve: echo, discard or http")
	return cmd
}

// appHandler returns the loop that serves app on a listener.
func appHandler(app string) (func(net.Listener) error, error) {
	switch app {
	case "echo":
		// Until the peer's FIN, echoing all; then close.
		return acceptLean(func(c net.Conn) io.Writer { return c }), nil
	case "discard":
		return acceptLean(func(net.Conn) io.Writer { return io.Discard }), nil
	case "http":
		return func(ln net.Listener) error {
			srv := &http.Server{Handler: httpApp(), ReadHeaderTimeout: 30 * time.Second}
			err := srv.Serve(ln)
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}, nil
	}
	return nil, fmt.Errorf("--app %q: want echo, discard or http", app)
}

// readBufs holds the read buffers of the echo and discard apps, lent
// to a connection only while it has data to move.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// acceptLean serves each accepted connection by copying what it reads to
// the writer that to gives for it, until the peer's FIN or an error, then closes
// it — io.Copy's work, done lean: while a connection has nothing to read
// it holds no goroutine and no buffer, only the handler the stack calls
// when data arrives ((*stack.Conn).OnReadable). The handler borrows a
// buffer from readBufs for one read and the write that follows, and
// registers itself again. An idle connection costs the stack's state and
// a closure, not the 32 KiB buffer and the goroutine stack of a blocked
// io.Copy.
func acceptLean(to func(net.Conn) io.Writer) func(net.Listener) error {
	return acceptLoop(func(c net.Conn) {
		dst := to(c)
		sc, ok := c.(*stack.Conn)
		if !ok {
			io.Copy(dst, c)
			c.Close()
			return
		}
		var step func()
		step = func() {
			bp := readBufs.Get().(*[]byte)
			n, err := sc.Read(*bp) // does not block: the stack said so
			var werr error
			if n > 0 {
				_, werr = dst.Write((*bp)[:n])
			}
			readBufs.Put(bp)
			if err != nil || werr != nil {
				sc.Close()
				return
			}
			sc.OnReadable(step)
		}
		sc.OnReadable(step)
	})
}

func acceptLoop(serve func(net.Conn)) func(net.Listener) error {
	return func(ln net.Listener) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			go serve(c)
		}
	}
}

// httpApp answers GET / with "ok\n" and GET /bytes/N with N bytes, byte i
// being i mod 251 (a prime, so the pattern does not line up with any
// power-of-two boundary and a misplaced block shows).
func httpApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			http.Error(w, "bad byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		var block [251 * 64]byte
		for i := range block {
			block[i] = byte(i % 251)
		}
		for n > 0 {
			k := min(n, int64(len(block)))
			if _, err := w.Write(block[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	return mux
}

func newDialCmd() *cobra.Command {
	var (
		sf      stackFlags
		to      string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dial --tun DEV --addr IP/PREFIX --to HOST:PORT",
		Short: "netcat over the tcpstate stack on a TUN device",
		Long: "dial connects through the stack to HOST:PORT and copies stdin to the\n" +
			"connection (with a FIN at stdin's end) and the connection to stdout until\n" +
			"the peer's FIN, then exits 0. A refused, reset or timed-out connection exits\n" +
			"non-zero with the reason on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if to == "" {
				return errors.New("--to is required: HOST:PORT to connect to")
			}
			if _, err := netip.ParseAddrPort(to); err != nil {
				return fmt.Errorf("--to %q: want IP:PORT (IPv6 as [addr]:port)", to)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := sf.open(ctx, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer func() {
				if cerr := st.close(); err == nil {
					err = cerr
				}
			}()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			nc, err := st.DialContext(ctx, "tcp", to)
			if err != nil {
				return err
			}
			c := nc.(*stack.Conn)
			sent := make(chan error, 1)
			go func() {
				_, err := io.Copy(c, cmd.InOrStdin())
				if err == nil {
					err = c.CloseWrite()
				}
				sent <- err
			}()
			_, err = io.Copy(cmd.OutOrStdout(), c)
			if err != nil {
				return err
			}
			// The peer has closed its side. Finish ours, and give the
			// closing handshake a moment so the peer is not left waiting
			// for our FIN's ACK.
			select {
			case err := <-sent:
				if err != nil && !errors.Is(err, net.ErrClosed) {
					return err
				}
			case <-time.After(2 * time.Second):
			}
			c.Close()
			waitClosed(c, 2*time.Second)
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&to, "to", "", "HOST:PORT to connect to (an IP address)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up connecting after this long (default: the stack's SYN retries, about two minutes)")
	return cmd
}

// waitClosed waits, at most d, for the connection to reach TIME-WAIT or
// CLOSED.
func waitClosed(c *stack.Conn, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s := c.Status().State; s == tcp.TimeWait || s == tcp.Closed {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
