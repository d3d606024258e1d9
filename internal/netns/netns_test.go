//go:build linux

package netns

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/testenv"
)

// threadNS returns the inode of the network namespace of the calling
// thread.
func threadNS() (uint64, error) {
	var st syscall.Stat_t
	err := syscall.Stat("/proc/thread-self/ns/net", &st)
	return st.Ino, err
}

func TestNamespace(t *testing.T) {
	ns := ForTest(t)
	if !strings.HasPrefix(ns.Name(), prefix) {
		t.Fatalf("name %q", ns.Name())
	}
	out := ns.MustRun(t, "ip", "-o", "link", "show")
	if strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "lo:") || !strings.Contains(out, "UP") {
		t.Fatalf("a new namespace should have only lo, up:\n%s", out)
	}
	if _, err := ns.Run("false"); err == nil {
		t.Fatal("Run of a failing command returned nil")
	}

	var st syscall.Stat_t
	if err := syscall.Stat(ns.Path(), &st); err != nil {
		t.Fatal(err)
	}
	host, err := threadNS()
	if err != nil {
		t.Fatal(err)
	}
	var inside uint64
	var conn net.PacketConn
	err = ns.Do(func() error {
		var err error
		if inside, err = threadNS(); err != nil {
			return err
		}
		conn, err = net.ListenPacket("udp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if inside != st.Ino || inside == host {
		t.Fatalf("Do ran in namespace %d; want %d (host %d)", inside, st.Ino, host)
	}
	// The socket stays in the namespace: reachable from inside it,
	// whatever thread then uses it.
	err = ns.Do(func() error {
		c, err := net.Dial("udp4", conn.LocalAddr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hi"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 10)
	if n, _, err := conn.ReadFrom(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}

	// Errors and panics come back to the caller.
	sentinel := errors.New("sentinel")
	if err := ns.Do(func() error { return sentinel }); err != sentinel {
		t.Fatalf("Do returned %v", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want boom", p)
			}
		}()
		ns.Do(func() error { panic("boom") })
	}()
}

func TestDelete(t *testing.T) {
	if err := Available(); err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	ns, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ns.Path()); !os.IsNotExist(err) {
		t.Fatalf("%s still exists after Delete: %v", ns.Path(), err)
	}
}
