//go:build linux

package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpstate/tcpstate/internal/testenv"
)

// RunTimeout bounds each command run by Run, MustRun and Delete.
const RunTimeout = 30 * time.Second

// namesDir is where `ip netns` keeps its named namespaces.
const namesDir = "/run/netns"

const prefix = "tcpstate-"

var counter atomic.Uint64

// NS is a named network namespace, as `ip netns` knows it.
type NS struct {
	name string
}

// Available returns nil if this process can make network namespaces, or
// an error that says why not: not root, or no `ip` command.
func Available() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("network namespaces need root, and this process runs as uid %d", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (iproute2) is not installed")
	}
	return nil
}

// New creates a network namespace with a fresh name and its loopback
// interface up. Delete it when done.
func New() (*NS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	sweep()
	ns := &NS{name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), counter.Add(1))}
	if out, err := run(context.Background(), "ip", "netns", "add", ns.name); err != nil {
		return nil, fmt.Errorf("netns: ip netns add %s: %v: %s", ns.name, err, out)
	}
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

// ForTest creates a namespace for t and deletes it when t ends. Where
// namespaces cannot be made, it skips t with the reason, unless the
// environment variable CI is "true", where it fails t instead.
func ForTest(t testing.TB) *NS {
	t.Helper()
	ns, err := New()
	if err != nil {
		testenv.Unavailable(t, "cannot create a network namespace: %v", err)
		return nil
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("deleting namespace: %v", err)
		}
	})
	return ns
}

// Name returns the namespace's name, as `ip netns` and `ip -n` take it.
func (ns *NS) Name() string { return ns.name }

// Path returns the file that holds the namespace, for setns(2).
func (ns *NS) Path() string { return filepath.Join(namesDir, ns.name) }

// Delete removes the namespace's name. The namespace itself, with its
// interfaces and routes, goes away once no process or open file (a socket
// or TUN device made inside it) still refers to it. It is bounded by
// RunTimeout.
func (ns *NS) Delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	if out, err := run(ctx, "ip", "netns", "delete", ns.name); err != nil {
		return fmt.Errorf("netns: ip netns delete %s: %v: %s", ns.name, err, out)
	}
	return nil
}

// Command returns a command that runs name with args inside the
// namespace (under `ip netns exec`). The context kills it when done, as
// with exec.CommandContext; start it, wire its input and output, and
// wait for it as with any exec.Cmd.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// Run runs name with args inside the namespace, waits at most RunTimeout,
// and returns its combined output. The error, if any, includes the
// command line and its output.
func (ns *NS) Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	out, err := run(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("netns %s: %s %s: %v: %s", ns.name, name,
			strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// MustRun is Run that fails t on error.
func (ns *NS) MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Do runs f on a locked OS thread that has joined the namespace, waits
// for it, and returns its error. Sockets and TUN devices that f creates
// live in the namespace and stay there; use them from any goroutine
// afterwards. The thread is thrown away when f returns (it is never
// handed back to the Go scheduler in the namespace), so nothing else
// runs there by accident.
//
// f must not call t.Fatal or t.FailNow (they must run on the test's
// goroutine): return an error instead. A panic in f is raised again in
// the caller of Do.
func (ns *NS) Do(f func() error) error {
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: when this goroutine exits, the runtime ends
		// its thread rather than reuse a thread in the wrong namespace.
		runtime.LockOSThread()
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.panic = p
			}
			done <- r
		}()
		if r.err = ns.enter(); r.err != nil {
			return
		}
		r.err = f()
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// enter moves the calling thread into the namespace.
func (ns *NS) enter() error {
	fd, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", ns.Path(), err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: setns %s: %w", ns.name, err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out.String(), err
}

// sweep deletes the namespaces this package made in processes that have
// since died.
func sweep() {
	entries, err := os.ReadDir(namesDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
			run(ctx, "ip", "netns", "delete", e.Name())
			cancel()
		}
	}
}
