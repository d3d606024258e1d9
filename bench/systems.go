package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	gvnet "gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	gvheader "gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	gvpipe "gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	gvtun "gvisor.dev/gvisor/pkg/tcpip/link/tun"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gvstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	gvtcp "gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/link/tun"
	"github.com/tcpstate/tcpstate/stack"
)

// The systems compared.
const (
	sysTcpstate   = "tcpstate"
	sysGVisor     = "gVisor"
	sysKernel     = "kernel"
	sysKernelNoOL = "kernel, offloads off"
)

// Addresses: in memory the client stack is .1 and the server stack .2;
// over TUN the kernel is .1 and the userspace stack .2.
var (
	memClient = netip.MustParseAddr("10.88.0.1")
	memServer = netip.MustParseAddr("10.88.0.2")
	tunKernel = netip.MustParseAddr("10.77.0.1")
	tunStack  = netip.MustParseAddr("10.77.0.2")
)

// tunName is the TUN device a client child makes in its namespace.
const tunName = "bt0"

// ephemeral is the local port range every stack dials from. It is wider
// than the usual 32768–60999 so that a crr run of a few seconds does not
// exhaust it; the kernel's namespaces get the same range.
var ephemeral = [2]uint16{10000, 65000}

// setup is a peer to measure against: dial reaches its services; close
// tears everything down.
type setup struct {
	dial  dialFunc
	close func()
	// stats, when set, describes the stack's counters (for -v).
	stats func() string
}

// memSetup joins two stacks of the system by their own in-memory link
// (the kernel: loopback) and serves the services on the second.
func memSetup(system string, mtu int) (*setup, error) {
	switch system {
	case sysTcpstate:
		return tcpstateMem(mtu)
	case sysGVisor:
		return gvisorMem(mtu)
	case sysKernel:
		return kernelLoopback()
	}
	return nil, fmt.Errorf("no in-memory setup for %q", system)
}

func tcpstateStack(ep link.Endpoint, addr netip.Addr) (*stack.Stack, error) {
	return stack.New(ep, stack.Options{
		Addrs:          []netip.Prefix{netip.PrefixFrom(addr, 24)},
		EphemeralPorts: ephemeral,
	})
}

// tcpstatePair makes two tcpstate stacks joined by a link/pipe of mtu:
// the client at memClient and the server at memServer.
func tcpstatePair(mtu int) (client, server *stack.Stack, closeFn func(), err error) {
	a, b := pipe.New(pipe.Config{MTU: mtu})
	ca, err := tcpstateStack(a, memClient)
	if err != nil {
		return nil, nil, nil, err
	}
	cb, err := tcpstateStack(b, memServer)
	if err != nil {
		ca.Close()
		return nil, nil, nil, err
	}
	return ca, cb, func() { ca.Close(); cb.Close(); a.Close(); b.Close() }, nil
}

func tcpstateMem(mtu int) (*setup, error) {
	ca, cb, closePair, err := tcpstatePair(mtu)
	if err != nil {
		return nil, err
	}
	srv, err := startServers(func(port int) (net.Listener, error) {
		return cb.Listen("tcp4", netip.AddrPortFrom(memServer, uint16(port)).String())
	})
	if err != nil {
		closePair()
		return nil, err
	}
	return &setup{
		dial: func(ctx context.Context, port int) (net.Conn, error) {
			return ca.DialTCP(ctx, netip.AddrPortFrom(memServer, uint16(port)))
		},
		close: func() { srv.Close(); closePair() },
	}, nil
}

// gvisorStack makes a gVisor stack with IPv4 and TCP on ep as NIC 1, set
// up as wireguard-go's and Tailscale's netstack users do: SACK on and the
// receive buffer auto-tuned ("moderated"); everything else is gVisor's
// default.
func gvisorStack(ep gvstack.LinkEndpoint, addr netip.Addr) (*gvstack.Stack, error) {
	s := gvstack.New(gvstack.Options{
		NetworkProtocols:   []gvstack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []gvstack.TransportProtocolFactory{gvtcp.NewProtocol},
	})
	sack := gvnet.TCPSACKEnabled(true)
	moderate := gvnet.TCPModerateReceiveBufferOption(true)
	for _, opt := range []gvnet.SettableTransportProtocolOption{&sack, &moderate} {
		if err := s.SetTransportProtocolOption(gvtcp.ProtocolNumber, opt); err != nil {
			s.Close()
			return nil, fmt.Errorf("gVisor option %T: %s", opt, err)
		}
	}
	if err := s.SetPortRange(ephemeral[0], ephemeral[1]); err != nil {
		s.Close()
		return nil, fmt.Errorf("gVisor port range: %s", err)
	}
	if err := s.CreateNIC(1, ep); err != nil {
		s.Close()
		return nil, fmt.Errorf("gVisor NIC: %s", err)
	}
	pa := gvnet.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: gvnet.AddressWithPrefix{Address: gvnet.AddrFrom4(addr.As4()), PrefixLen: 24},
	}
	if err := s.AddProtocolAddress(1, pa, gvstack.AddressProperties{}); err != nil {
		s.Close()
		return nil, fmt.Errorf("gVisor address: %s", err)
	}
	s.SetRouteTable([]gvnet.Route{{Destination: gvheader.IPv4EmptySubnet, NIC: 1}})
	return s, nil
}

func gvisorAddr(a netip.Addr, port int) gvnet.FullAddress {
	return gvnet.FullAddress{NIC: 1, Addr: gvnet.AddrFrom4(a.As4()), Port: uint16(port)}
}

func gvisorClose(s *gvstack.Stack) {
	s.Close()
	s.Wait()
}

// gvisorPair joins two gVisor stacks with gVisor's own pipe link, which
// its tests use: a write on one end is delivered to the other stack at
// once, on the writer's goroutine.
func gvisorPair(mtu int) (client, server *gvstack.Stack, closeFn func(), err error) {
	a, b := gvpipe.New("", "", uint32(mtu))
	ca, err := gvisorStack(a, memClient)
	if err != nil {
		return nil, nil, nil, err
	}
	cb, err := gvisorStack(b, memServer)
	if err != nil {
		gvisorClose(ca)
		return nil, nil, nil, err
	}
	return ca, cb, func() { gvisorClose(ca); gvisorClose(cb) }, nil
}

func gvisorMem(mtu int) (*setup, error) {
	ca, cb, closePair, err := gvisorPair(mtu)
	if err != nil {
		return nil, err
	}
	srv, err := startServers(func(port int) (net.Listener, error) {
		return gonet.ListenTCP(cb, gvisorAddr(memServer, port), ipv4.ProtocolNumber)
	})
	if err != nil {
		closePair()
		return nil, err
	}
	return &setup{
		dial: func(ctx context.Context, port int) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, ca, gvisorAddr(memServer, port), ipv4.ProtocolNumber)
		},
		close: func() { srv.Close(); closePair() },
	}, nil
}

// kernelListen returns a listenFunc for kernel sockets on host, which
// binds the service ports themselves when fixed is set, or else any free
// port, remembered in ports.
func kernelListen(host netip.Addr, fixed bool, ports map[int]int) listenFunc {
	return func(port int) (net.Listener, error) {
		p := 0
		if fixed {
			p = port
		}
		ln, err := net.Listen("tcp4", netip.AddrPortFrom(host, uint16(p)).String())
		if err != nil {
			return nil, err
		}
		ports[port] = ln.Addr().(*net.TCPAddr).Port
		return ln, nil
	}
}

func kernelDial(host netip.Addr, ports map[int]int) dialFunc {
	var d net.Dialer
	return func(ctx context.Context, port int) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", netip.AddrPortFrom(host, uint16(ports[port])).String())
	}
}

// kernelLoopback serves on 127.0.0.1 at free ports. The loopback device
// keeps its MTU (65536) for both bulk rows.
func kernelLoopback() (*setup, error) {
	lo := netip.MustParseAddr("127.0.0.1")
	ports := map[int]int{}
	srv, err := startServers(kernelListen(lo, false, ports))
	if err != nil {
		return nil, err
	}
	return &setup{dial: kernelDial(lo, ports), close: srv.Close}, nil
}

// tunSetup runs in a child process inside the benchmark's TUN namespace:
// it makes the TUN device, gives the kernel its end (tunKernel/24),
// serves the services on kernel sockets there, and puts the system's
// stack on the device at tunStack.
func tunSetup(system string) (*setup, error) {
	var (
		dial    dialFunc
		closeFn func()
		statsFn func() string
	)
	configure := func() error {
		for _, args := range [][]string{
			{"addr", "add", tunKernel.String() + "/24", "dev", tunName},
			{"link", "set", tunName, "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return nil
	}
	switch system {
	case sysTcpstate:
		dev, err := tun.Open(tunName, tun.Options{Queues: tunQueues})
		if err != nil {
			return nil, err
		}
		if err := configure(); err != nil {
			dev.Close()
			return nil, err
		}
		st, err := tcpstateStack(dev, tunStack)
		if err != nil {
			dev.Close()
			return nil, err
		}
		dial = func(ctx context.Context, port int) (net.Conn, error) {
			return st.DialTCP(ctx, netip.AddrPortFrom(tunKernel, uint16(port)))
		}
		closeFn = func() { st.Close(); dev.Close() }
		statsFn = func() string {
			states := map[string]int{}
			for _, c := range st.Conns() {
				states[c.Status().State.String()]++
			}
			return fmt.Sprintf("%+v; connections left, by state: %v", st.Stats(), states)
		}
	case sysGVisor:
		fd, err := gvtun.Open(tunName)
		if err != nil {
			return nil, fmt.Errorf("gVisor tun.Open: %w", err)
		}
		if err := configure(); err != nil {
			unix.Close(fd)
			return nil, err
		}
		ep, err := fdbased.New(&fdbased.Options{FDs: []int{fd}, MTU: 1500})
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("gVisor fdbased: %w", err)
		}
		st, err := gvisorStack(ep, tunStack)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		dial = func(ctx context.Context, port int) (net.Conn, error) {
			return gonet.DialContextTCP(ctx, st, gvisorAddr(tunKernel, port), ipv4.ProtocolNumber)
		}
		closeFn = func() { gvisorClose(st); unix.Close(fd) }
	default:
		return nil, fmt.Errorf("no TUN setup for %q", system)
	}
	ports := map[int]int{}
	srv, err := startServers(kernelListen(tunKernel, true, ports))
	if err != nil {
		closeFn()
		return nil, err
	}
	return &setup{dial: dial, close: func() { srv.Close(); closeFn() }, stats: statsFn}, nil
}
