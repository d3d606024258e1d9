// Package stacktest gives tests outside package stack what most of them
// start from: two stacks joined by an in-memory pipe, and an echo server.
package stacktest

import (
	"io"
	"net/netip"
	"testing"

	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/stack"
)

// The addresses of the two stacks Pair makes.
var (
	ClientAddrs = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}
	ServerAddrs = []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}
)

// Pair starts a client stack (10.0.0.1, fd00::1) and a server stack
// (10.0.0.2, fd00::2) joined by a pipe configured by cfg, and closes both
// when the test ends. wrap, if not nil, wraps the client's end of the
// pipe (a tap, say) before the client stack takes it.
func Pair(t testing.TB, cfg pipe.Config, wrap func(link.Endpoint) link.Endpoint) (client, server *stack.Stack) {
	t.Helper()
	ea, eb := pipe.New(cfg)
	var ca link.Endpoint = ea
	if wrap != nil {
		ca = wrap(ea)
	}
	client, err := stack.New(ca, stack.Options{Addrs: ClientAddrs})
	if err != nil {
		t.Fatal(err)
	}
	server, err = stack.New(eb, stack.Options{Addrs: ServerAddrs})
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// Echo listens on s at address (":80") and echoes each connection's bytes
// until its FIN, then closes it. The listener closes with the stack.
func Echo(t testing.TB, s *stack.Stack, address string) {
	t.Helper()
	ln, err := s.Listen("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
}
