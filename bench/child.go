package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// childResult is one workload's figure from a child process.
type childResult struct {
	Value float64 `json:"value"`
	Err   string  `json:"err,omitempty"`
}

// startChild starts this program again as a child in mode, under `ip
// netns exec NS` when ns is not empty. The child dies with the parent
// (PR_SET_PDEATHSIG) and with ctx.
func startChild(ctx context.Context, ns string, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if ns != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, exe}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, exe, args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 2 * time.Second
	return cmd, nil
}

// runChild runs a child to its end, bounded by limit, and decodes the
// JSON object it prints into v.
func runChild(ctx context.Context, limit time.Duration, v any, ns string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd, err := startChild(ctx, ns, args...)
	if err != nil {
		return err
	}
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("child %s: %w (%v)", strings.Join(args, " "), ctx.Err(), err)
		}
		return fmt.Errorf("child %s: %w", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("child %s: bad output %q: %w", strings.Join(args, " "), out, err)
	}
	return nil
}

// childClient runs the named client workloads against system and prints
// a JSON object of their figures. For the userspace stacks it runs inside
// the TUN namespace and makes the device and the kernel peer itself; for
// the kernel it dials the peer child at target.
func childClient(ctx context.Context, system string, workloads []string, target string, d time.Duration, profile string) error {
	var s *setup
	var err error
	if system == sysKernel {
		addr, perr := netip.ParseAddr(target)
		if perr != nil {
			return fmt.Errorf("-target: %w", perr)
		}
		s = &setup{dial: kernelDial(addr, identityPorts), close: func() {}}
	} else {
		s, err = tunSetup(system)
	}
	if err != nil {
		return err
	}
	defer s.close()
	res := map[string]childResult{}
	for _, name := range workloads {
		w := workloadByName(name)
		if w == nil || w.client == nil {
			return fmt.Errorf("no client workload %q", name)
		}
		var prof *profiler
		if profile != "" {
			if prof, err = startProfile(profile + "-" + name); err != nil {
				return err
			}
		}
		v, err := w.client(ctx, s.dial, d)
		if prof != nil {
			if perr := prof.stop(); perr != nil && err == nil {
				err = perr
			}
		}
		if verbose && s.stats != nil {
			fmt.Fprintf(os.Stderr, "%s %s: %g, %v; stack stats %s\n", system, name, v, err, s.stats())
		}
		r := childResult{Value: v}
		if err != nil {
			r.Err = err.Error()
		}
		res[name] = r
		if ctx.Err() != nil {
			break
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// identityPorts maps each service to its own port number: the peer child
// binds the fixed ports.
var identityPorts = map[int]int{portDiscard: portDiscard, portSource: portSource, portEcho: portEcho}

// childPeer serves the services on kernel sockets at bind, says "ready"
// on stdout, and serves until its standard input closes (the parent went
// away or is done) or ctx ends.
func childPeer(ctx context.Context, bind string) error {
	addr, err := netip.ParseAddr(bind)
	if err != nil {
		return fmt.Errorf("-bind: %w", err)
	}
	srv, err := startServers(kernelListen(addr, true, map[int]int{}))
	if err != nil {
		return err
	}
	defer srv.Close()
	readyUntilStdinCloses(ctx)
	return nil
}

// startPeer starts a peer child in ns serving at bind and waits until it
// is ready. Stop it by closing the returned function.
func startPeer(ctx context.Context, ns, bind string) (stop func(), err error) {
	cmd, err := startChild(ctx, ns, "-child", "peer", "-bind", bind)
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("peer said %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("peer in %s not ready after 10s", ns)
	}
	if err != nil {
		stop()
		return nil, fmt.Errorf("peer child: %w", err)
	}
	return stop, nil
}

// heapResult is what the heap child reports.
type heapResult struct {
	HeapPerPair float64 `json:"heap_per_pair"`
	RSSPerPair  float64 `json:"rss_per_pair"`
	Pairs       int     `json:"pairs"`
}

// childHeap opens n established pairs between two in-memory stacks of
// system (MTU 1500), lets them go idle, and prints the Go heap (after a
// GC) and the RSS they added, per pair.
func childHeap(ctx context.Context, system string, n int, profile string) error {
	var (
		listen func() (net.Listener, error)
		dial   func(context.Context) (net.Conn, error)
		closeF func()
	)
	const port = 6000
	switch system {
	case sysTcpstate:
		cliStack, srvStack, c, err := tcpstatePair(1500)
		if err != nil {
			return err
		}
		closeF = c
		listen = func() (net.Listener, error) {
			return srvStack.Listen("tcp4", netip.AddrPortFrom(memServer, port).String())
		}
		dial = func(ctx context.Context) (net.Conn, error) {
			return cliStack.DialTCP(ctx, netip.AddrPortFrom(memServer, port))
		}
	case sysGVisor:
		cliStack, srvStack, c, err := gvisorPair(1500)
		if err != nil {
			return err
		}
		closeF = c
		listen = func() (net.Listener, error) {
			return gonet.ListenTCP(srvStack, gvisorAddr(memServer, port), ipv4.ProtocolNumber)
		}
		dial = func(ctx context.Context) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, cliStack, gvisorAddr(memServer, port), ipv4.ProtocolNumber)
		}
	default:
		return fmt.Errorf("no heap workload for %q", system)
	}
	defer closeF()
	ln, err := listen()
	if err != nil {
		return err
	}
	defer ln.Close()

	var mu sync.Mutex
	var accepted []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	heapBefore, rssBefore := settle()

	var dialed []net.Conn
	for i := 0; i < n; i++ {
		dctx, cancel := context.WithTimeout(ctx, ioTimeout)
		c, err := dial(dctx)
		cancel()
		if err != nil {
			return fmt.Errorf("pair %d: %w", i, err)
		}
		dialed = append(dialed, c)
	}
	deadline := time.Now().Add(ioTimeout)
	for {
		mu.Lock()
		got := len(accepted)
		mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d connections accepted", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Let delayed ACKs and the like go out, so the pairs are idle.
	time.Sleep(300 * time.Millisecond)
	heapAfter, rssAfter := settle()
	if profile != "" {
		f, err := os.Create(profile + "-heap.inuse.pprof")
		if err != nil {
			return err
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			f.Close()
			return err
		}
		f.Close()
	}
	res := heapResult{
		HeapPerPair: float64(int64(heapAfter)-int64(heapBefore)) / float64(n),
		RSSPerPair:  float64(rssAfter-rssBefore) / float64(n),
		Pairs:       n,
	}
	runtime.KeepAlive(dialed)
	mu.Lock()
	runtime.KeepAlive(accepted)
	mu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// settle runs the garbage collector until the heap stops shrinking and
// returns the live heap and the process's resident set, in bytes.
func settle() (heap uint64, rss int64) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, residentBytes()
}

// residentBytes reads VmRSS from /proc/self/status; 0 if it cannot.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// profiler holds a running CPU profile and the allocation profile taken
// when it started.
type profiler struct {
	prefix string
	cpu    *os.File
}

// startProfile starts a CPU profile into prefix.cpu.pprof and writes the
// allocation profile so far to prefix.allocs-before.pprof, so that
// `go tool pprof -base` shows what the workload allocated.
func startProfile(prefix string) (*profiler, error) {
	if err := writeProfile("allocs", prefix+".allocs-before.pprof"); err != nil {
		return nil, err
	}
	f, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return &profiler{prefix: prefix, cpu: f}, nil
}

// stop ends the CPU profile and writes the allocation profile to
// prefix.allocs.pprof.
func (p *profiler) stop() error {
	pprof.StopCPUProfile()
	if err := p.cpu.Close(); err != nil {
		return err
	}
	return writeProfile("allocs", p.prefix+".allocs.pprof")
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readyUntilStdinCloses tells the parent that a serving child is ready,
// with a line "ready" on stdout, and waits until the parent closes the
// child's stdin or ctx ends.
func readyUntilStdinCloses(ctx context.Context) {
	fmt.Println("ready")
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
}
