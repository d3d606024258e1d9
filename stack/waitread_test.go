package stack

import (
	"context"
	"errors"
	"io"
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
