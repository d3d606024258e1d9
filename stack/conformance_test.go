package stack

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/tcpstate/tcpstate/link/pipe"
)

// TestNettestConn runs the standard library's conformance suite for
// net.Conn (golang.org/x/net/nettest.TestConn) on a pair of stack
// connections: basic I/O, ping-pong, racing reads and writes, deadlines
// set before and during blocked calls, concurrent Close.
func TestNettestConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := twoStacks(t, pipe.Config{}, Options{})
		ln, err := b.Listen("tcp", ":80")
		if err != nil {
			return nil, nil, nil, err
		}
		done := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- nil
				return
			}
			done <- c
		}()
		c1, err = a.Dial("tcp", "10.0.0.2:80")
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-done
		if c2 == nil {
			return nil, nil, nil, fmt.Errorf("accept failed")
		}
		stop = func() {
			c1.Close()
			c2.Close()
			ln.Close()
			a.Close()
			b.Close()
		}
		return c1, c2, stop, nil
	})
}

// TestHTTPOverStack serves and fetches with net/http, both ends on
// stacks.
func TestHTTPOverStack(t *testing.T) {
	a, b := twoStacks(t, pipe.Config{}, Options{})
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s %s", r.Method, r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: a.DialContext}}
	defer client.CloseIdleConnections()
	for i := range 5 {
		resp, err := client.Get(fmt.Sprintf("http://10.0.0.2/x%d", i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("hello GET /x%d", i); string(body) != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	resp, err := client.Post("http://10.0.0.2/upload", "text/plain", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
