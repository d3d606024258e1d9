package stack

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestWaitRead checks that WaitRead blocks while nothing can be read and
// returns once data, the peer's FIN, a deadline or the context's end
// arrives, leaving the data for Read.
func TestWaitRead(t *testing.T) {
	client, server := connected(t, Options{})
	sc := server.(*Conn)

	// Nothing sent: it must still be waiting after a while.
	done := make(chan error, 1)
	go func() { done <- sc.WaitRead(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("WaitRead returned %v with nothing to read", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitRead after data: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRead still blocked after data arrived")
	}
	// The data is still there for Read.
	buf := make([]byte, 16)
	n, err := sc.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read after WaitRead = %q, %v; want \"hello\"", buf[:n], err)
	}

	// A context that ends returns its error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sc.WaitRead(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRead with an expiring context = %v, want DeadlineExceeded", err)
	}

	// A read deadline ends the wait with nil; Read then reports it.
	sc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if err := sc.WaitRead(context.Background()); err != nil {
		t.Fatalf("WaitRead with a read deadline = %v, want nil", err)
	}
	if el := time.Since(start); el < 40*time.Millisecond {
		t.Fatalf("WaitRead returned after %v, before the deadline", el)
	}
	if _, err := sc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want ErrDeadlineExceeded", err)
	}
	sc.SetReadDeadline(time.Time{})

	// The peer's FIN ends the wait; Read gives io.EOF.
	go func() { done <- sc.WaitRead(context.Background()) }()
	client.(*Conn).CloseWrite()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitRead after FIN: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRead still blocked after the peer's FIN")
	}
	if _, err := sc.Read(buf); err != io.EOF {
		t.Fatalf("Read after FIN = %v, want io.EOF", err)
	}
}

// TestOnReadable checks that the function OnReadable registers runs once
// data arrives (not before), runs at once when data waits already, is
// called only once per registration, and runs on the peer's FIN and on
// Close.
func TestOnReadable(t *testing.T) {
	client, server := connected(t, Options{})
	sc := server.(*Conn)
	called := make(chan struct{}, 4)
	notify := func() { called <- struct{}{} }
	wait := func(what string) {
		t.Helper()
		select {
		case <-called:
		case <-time.After(5 * time.Second):
			t.Fatalf("OnReadable's function not called after %s", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-called:
			t.Fatalf("OnReadable's function called %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	sc.OnReadable(notify)
	quiet("with nothing to read")
	client.Write([]byte("a"))
	wait("data arrived")
	// Data still waits: a new registration runs at once.
	sc.OnReadable(notify)
	wait("registering with data waiting")
	buf := make([]byte, 8)
	if n, err := sc.Read(buf); n != 1 || err != nil {
		t.Fatalf("Read = %d, %v; want 1 byte", n, err)
	}
	// Once per registration: more data without a new registration
	// calls nothing.
	client.Write([]byte("b"))
	quiet("without a registration")
	sc.Read(buf)
	// nil cancels.
	sc.OnReadable(notify)
	sc.OnReadable(nil)
	client.Write([]byte("c"))
	quiet("after cancelling")
	sc.Read(buf)
	// The peer's FIN.
	sc.OnReadable(notify)
	client.(*Conn).CloseWrite()
	wait("the peer's FIN")
	if _, err := sc.Read(buf); err != io.EOF {
		t.Fatalf("Read after FIN = %v, want io.EOF", err)
	}
}

// TestOnReadableClose checks that Close runs a registered function, so a
// handler parked on an idle connection learns it is closed.
func TestOnReadableClose(t *testing.T) {
	_, server := connected(t, Options{})
	sc := server.(*Conn)
	called := make(chan struct{}, 1)
	sc.OnReadable(func() { called <- struct{}{} })
	sc.Close()
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not run the OnReadable function")
	}
	if _, err := sc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
}
