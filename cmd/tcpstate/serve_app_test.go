package main

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/stack"
)

// TestEchoAppLean runs the echo app on a stack joined to another by an
// in-memory pipe and checks that it echoes more than one buffer's worth,
// in pieces, and closes after the client's FIN — through copyLean, which
// waits for data without a buffer.
func TestEchoAppLean(t *testing.T) {
	ea, eb := pipe.New(pipe.Config{})
	a, err := stack.New(ea, stack.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := stack.New(eb, stack.Options{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := b.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	handler, err := appHandler("echo")
	if err != nil {
		t.Fatal(err)
	}
	go handler(ln)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp", "10.0.0.2:7")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	// First a small message after an idle moment, then 200 KiB (more
	// than the app's 32 KiB buffer) while the echo is read concurrently.
	time.Sleep(50 * time.Millisecond)
	msg := []byte("ping")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %q = %q, %v", msg, got, err)
	}
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(i % 251)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(big)
		if err == nil {
			err = c.(*stack.Conn).CloseWrite()
		}
		werr <- err
	}()
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("writing: %v", err)
	}
	if !bytes.Equal(back, big) {
		t.Fatalf("echo of %d bytes came back as %d bytes, differing", len(big), len(back))
	}
}

// TestAppHandlerUnknown checks that an unknown app is refused.
func TestAppHandlerUnknown(t *testing.T) {
	if _, err := appHandler("chargen"); err == nil {
		t.Fatal("appHandler(\"chargen\") gave no error")
	}
}
