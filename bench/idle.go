package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	gvtun "gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// The tun-idle-echo workload: an echo server on a userspace stack over
// TUN — tcpstate's own CLI (`tcpstate serve --app echo`), or the same
// program written on gVisor's gonet as a user would write it (io.Copy per
// connection) — and N kernel connections to it, each exchanging one small
// message and then idle. The figure is the growth of the server process's
// resident set (VmRSS) per connection.

// idlePort is the port the echo servers listen on.
const idlePort = 7

// idleResult is what the idle child reports.
type idleResult struct {
	RSSPerConn float64 `json:"rss_per_conn"`
	RSSBefore  int64   `json:"rss_before"`
	RSSAfter   int64   `json:"rss_after"`
	Conns      int     `json:"conns"`
}

// buildTcpstate builds the tcpstate command from the main module (the
// directory the bench module's replace points at) into dir and returns
// the binary's path.
func buildTcpstate(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		// sudo may drop go's directory from PATH.
		goBin = "/usr/local/go/bin/go"
	}
	out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/tcpstate/tcpstate").Output()
	if err != nil {
		return "", fmt.Errorf("finding the main module: %w", err)
	}
	bin := filepath.Join(dir, "tcpstate")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/tcpstate")
	cmd.Dir = strings.TrimSpace(string(out))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tcpstate: %v: %s", err, out)
	}
	return bin, nil
}

// childIdle runs in a fresh namespace: it makes the TUN device, starts
// the echo server of system on it (serveBin for tcpstate, this program's
// gvecho child for gVisor), opens n kernel connections that each echo one
// message, and prints the server's RSS growth per connection.
func childIdle(ctx context.Context, system, serveBin string, n int) error {
	for _, args := range [][]string{
		{"tuntap", "add", "dev", tunName, "mode", "tun"},
		{"addr", "add", tunKernel.String() + "/24", "dev", tunName},
		{"link", "set", tunName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	var cmd *exec.Cmd
	switch system {
	case sysTcpstate:
		if serveBin == "" {
			return fmt.Errorf("-serve: the tcpstate binary is needed")
		}
		cmd = exec.CommandContext(ctx, serveBin, "serve", "--tun", tunName,
			"--addr", tunStack.String()+"/24", "--port", strconv.Itoa(idlePort), "--app", "echo")
	case sysGVisor:
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cmd = exec.CommandContext(ctx, exe, "-child", "gvecho")
	default:
		return fmt.Errorf("no idle echo server for %q", system)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("server said %q", line)
		}
		ready <- err
		io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("echo server: %w", err)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("echo server not ready after 10s")
	}
	pid := cmd.Process.Pid
	time.Sleep(300 * time.Millisecond)
	before, err := processRSS(pid)
	if err != nil {
		return err
	}

	// Open the connections, 16 at a time; each echoes one message.
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d net.Dialer
			msg := make([]byte, crrSize)
			for i := range msg {
				msg[i] = byte(i)
			}
			got := make([]byte, len(msg))
			for i := range next {
				dctx, cancel := context.WithTimeout(ctx, ioTimeout)
				c, err := d.DialContext(dctx, "tcp4", fmt.Sprintf("%s:%d", tunStack, idlePort))
				cancel()
				if err == nil {
					conns[i] = c
					c.SetDeadline(time.Now().Add(ioTimeout))
					if _, err = c.Write(msg); err == nil {
						_, err = io.ReadFull(c, got)
					}
					if err == nil && string(got) != string(msg) {
						err = fmt.Errorf("echo differs")
					}
					c.SetDeadline(time.Time{})
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("connection %d: %w", i, err):
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n && len(errs) == 0 && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Let delayed ACKs go and the server settle, idle.
	time.Sleep(time.Second)
	after, err := processRSS(pid)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(idleResult{
		RSSPerConn: float64(after-before) / float64(n),
		RSSBefore:  before, RSSAfter: after, Conns: n,
	})
}

// processRSS reads VmRSS of process pid, in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// childGVisorEcho is the gVisor counterpart of `tcpstate serve --app
// echo`: gVisor's netstack on the existing TUN device at tunStack, an echo
// server on gonet with io.Copy per connection. It says "ready" and serves
// until its standard input closes or ctx ends.
func childGVisorEcho(ctx context.Context) error {
	fd, err := gvtun.Open(tunName)
	if err != nil {
		return fmt.Errorf("gVisor tun.Open: %w", err)
	}
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: 1500})
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("gVisor fdbased: %w", err)
	}
	st, err := gvisorStack(ep, tunStack)
	if err != nil {
		unix.Close(fd)
		return err
	}
	defer func() { gvisorClose(st); unix.Close(fd) }()
	ln, err := gonet.ListenTCP(st, gvisorAddr(tunStack, idlePort), ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	readyUntilStdinCloses(ctx)
	return nil
}
