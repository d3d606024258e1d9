//go:build linux

package tun

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"github.com/tcpstate/tcpstate/header"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/link"
)

// The addresses of the tests' namespace: the kernel is .1 on the TUN
// device, and the test plays .2 at the other end.
var (
	kernelAddr = netip.MustParseAddr("10.77.0.1")
	peerAddr   = netip.MustParseAddr("10.77.0.2")
)

func TestOpenBadNames(t *testing.T) {
	for _, name := range []string{"a-name-that-is-too-long", "a/b", "a b"} {
		_, err := Open(name, Options{})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Open(%q) = %v; want an error naming the device", name, err)
		}
	}
}

func TestOpenNoCreateMissing(t *testing.T) {
	_, err := Open("tcpstate-none", Options{NoCreate: true})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `"tcpstate-none"`) {
		t.Fatalf("Open of a missing device with NoCreate = %v; want fs.ErrNotExist naming it", err)
	}
	t.Log(err)
}

func TestOpenNoCloneDevice(t *testing.T) {
	defer func(old string) { cloneDevice = old }(cloneDevice)
	cloneDevice = "/nonexistent/net/tun"
	_, err := Open("tun0x", Options{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), cloneDevice) ||
		!strings.Contains(err.Error(), `"tun0x"`) {
		t.Fatalf("Open with no clone device = %v", err)
	}
	t.Log(err)
}

// setup makes a namespace and, inside it, opens a TUN device called name
// with opts, gives the kernel kernelAddr/24 on it and brings it up.
func setup(t testing.TB, name string, opts Options) (*netns.NS, *Device) {
	t.Helper()
	ns := netns.ForTest(t)
	var d *Device
	err := ns.Do(func() error {
		var err error
		d, err = Open(name, opts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ns.MustRun(t, "ip", "addr", "add", kernelAddr.String()+"/24", "dev", d.Name())
	ns.MustRun(t, "ip", "link", "set", d.Name(), "up")
	return ns, d
}

// setupB is setup for a benchmark, with no IPv6 on the device so that
// nothing arrives that the benchmark did not ask for.
func setupB(b *testing.B) (*netns.NS, *Device) {
	ns, d := setup(b, "tcpstb", Options{})
	noIPv6(b, ns, d)
	return ns, d
}

// noIPv6 turns IPv6 off on the device, so that the kernel sends nothing
// on it by itself (router solicitations, MLD reports). A kernel without
// IPv6 has nothing to turn off.
func noIPv6(t testing.TB, ns *netns.NS, d *Device) {
	t.Helper()
	err := ns.Do(func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+d.Name()+"/disable_ipv6", []byte("1"), 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readUntil reads from d until match accepts a packet, and returns it.
// Other packets (IPv6 router solicitations and the like) are skipped. It
// closes d if nothing matches within the wait.
func readUntil(t *testing.T, d *Device, wait time.Duration, match func([]byte) bool) []byte {
	t.Helper()
	timer := time.AfterFunc(wait, func() { d.Close() })
	defer timer.Stop()
	bufs := [][]byte{make([]byte, 2048), make([]byte, 2048), make([]byte, 2048)}
	sizes := make([]int, len(bufs))
	for {
		n, err := d.ReadPackets(bufs, sizes)
		if err != nil {
			t.Fatalf("no matching packet within %v: %v", wait, err)
		}
		for i := 0; i < n; i++ {
			if p := bufs[i][:sizes[i]]; match(p) {
				return append([]byte(nil), p...)
			}
		}
	}
}

func isUDP4To(dst netip.Addr, port uint16) func([]byte) bool {
	return func(p []byte) bool {
		return len(p) >= 28 && p[0]>>4 == 4 && p[9] == unix.IPPROTO_UDP &&
			netip.AddrFrom4([4]byte(p[16:20])) == dst &&
			binary.BigEndian.Uint16(p[22:]) == port
	}
}

// TestKernelToDevice: the kernel sends a UDP datagram to an address
// routed to the device, and ReadPackets returns it as an IPv4 packet;
// then a datagram written to the device reaches the kernel's socket.
func TestKernelRoundTrip(t *testing.T) {
	ns, d := setup(t, "tcpst0", Options{})
	if !d.Created() || d.Name() != "tcpst0" || d.MTU() != 1500 {
		t.Fatalf("Created %v, Name %q, MTU %d", d.Created(), d.Name(), d.MTU())
	}
	conn, local := kernelUDP(t, ns)

	// Kernel → device.
	if _, err := conn.WriteToUDPAddrPort([]byte("from the kernel"), netip.AddrPortFrom(peerAddr, 7000)); err != nil {
		t.Fatal(err)
	}
	p := readUntil(t, d, 5*time.Second, isUDP4To(peerAddr, 7000))
	if src := netip.AddrFrom4([4]byte(p[12:16])); src != kernelAddr {
		t.Errorf("source %v, want %v", src, kernelAddr)
	}
	if sport := binary.BigEndian.Uint16(p[20:]); sport != local.Port() {
		t.Errorf("source port %d, want %d", sport, local.Port())
	}
	if got := string(p[28:]); got != "from the kernel" {
		t.Errorf("payload %q", got)
	}

	// Device → kernel: a reply the socket receives.
	reply := udp4(peerAddr, kernelAddr, 7000, local.Port(), []byte("from the device"))
	if n, err := d.WritePackets([][]byte{reply}); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("the kernel did not deliver the datagram written to the device: %v", err)
	}
	if string(buf[:n]) != "from the device" || from != netip.AddrPortFrom(peerAddr, 7000) {
		t.Fatalf("socket got %q from %v", buf[:n], from)
	}

	// A batch: several datagrams queued by the kernel come back from one
	// ReadPackets call when they are all ready.
	for i := range 5 {
		conn.WriteToUDPAddrPort([]byte{byte(i)}, netip.AddrPortFrom(peerAddr, 7001))
	}
	time.Sleep(50 * time.Millisecond)
	var got []byte
	maxBatch := 0
	timer := time.AfterFunc(5*time.Second, func() { d.Close() })
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, len(bufs))
	for len(got) < 5 {
		n, err := d.ReadPackets(bufs, sizes)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		maxBatch = max(maxBatch, n)
		for i := 0; i < n; i++ {
			if p := bufs[i][:sizes[i]]; isUDP4To(peerAddr, 7001)(p) {
				got = append(got, p[28])
			}
		}
	}
	timer.Stop()
	if !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Errorf("datagrams in order %v", got)
	}
	if maxBatch < 2 {
		t.Errorf("ReadPackets returned at most %d packet at a time; want the ready ones together", maxBatch)
	}

	// A buffer too short for the packet: cut short, full length given.
	conn.WriteToUDPAddrPort(make([]byte, 100), netip.AddrPortFrom(peerAddr, 7002))
	timer = time.AfterFunc(5*time.Second, func() { d.Close() })
	short := [][]byte{make([]byte, 24)}
	for {
		n, err := d.ReadPackets(short, sizes)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 && short[0][0]>>4 == 4 && binary.BigEndian.Uint16(short[0][22:]) == 7002 {
			break
		}
	}
	timer.Stop()
	if sizes[0] != 128 {
		t.Errorf("a 128-byte packet read into 24 bytes: size %d, want 128", sizes[0])
	}

	// The kernel refuses what is not IP; the error names the device.
	_, err = d.WritePackets([][]byte{{0x00, 1, 2, 3}})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "tcpst0") {
		t.Errorf("writing a non-IP packet: %v", err)
	}
}

// TestPing answers the kernel's ping through the device, if ping is
// installed.
func TestPing(t *testing.T) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping is not installed (apt-get install iputils-ping); skipping")
	}
	ns, d := setup(t, "tcpst1", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, "ping", "-c1", "-W5", peerAddr.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	req := readUntil(t, d, 5*time.Second, func(p []byte) bool {
		return len(p) >= 28 && p[0] == 0x45 && p[9] == unix.IPPROTO_ICMP && p[20] == 8 &&
			netip.AddrFrom4([4]byte(p[16:20])) == peerAddr
	})
	if n, err := d.WritePackets([][]byte{echoReply(req)}); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ping did not get the reply: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
}

// echoReply turns an ICMP echo request in an IPv4 packet with a 20-byte
// header into the reply.
func echoReply(req []byte) []byte {
	p := append([]byte(nil), req...)
	copy(p[12:16], req[16:20])
	copy(p[16:20], req[12:16])
	p[8] = 64
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], header.FinishChecksum(header.Checksum(p[:20], 0)))
	p[20] = 0 // echo reply
	p[22], p[23] = 0, 0
	binary.BigEndian.PutUint16(p[22:], header.FinishChecksum(header.Checksum(p[20:], 0)))
	return p
}

// TestCloseWakesReader: Close ends a ReadPackets blocked with nothing to
// read, with link.ErrClosed, and a device Open created goes with it.
func TestCloseWakesReader(t *testing.T) {
	ns, d := setup(t, "tcpst2", Options{})
	noIPv6(t, ns, d)
	errc := readUntilError(d)
	time.Sleep(100 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != link.ErrClosed {
			t.Fatalf("ReadPackets after Close: %v, want link.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked ReadPackets")
	}
	if _, err := d.WritePackets([][]byte{{0x45}}); err != link.ErrClosed {
		t.Fatalf("WritePackets after Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if out, err := ns.Run("ip", "link", "show", "tcpst2"); err == nil {
		t.Fatalf("a created, non-persistent device outlived Close:\n%s", out)
	}
}

// TestAttachExisting attaches to a persistent device made by ip tuntap,
// takes its MTU, and leaves it in place; and reports the errors of a
// device that is busy, not a TUN device, or not ours.
func TestAttachExisting(t *testing.T) {
	ns := netns.ForTest(t)
	ns.MustRun(t, "ip", "tuntap", "add", "dev", "ptun", "mode", "tun")
	ns.MustRun(t, "ip", "link", "set", "ptun", "mtu", "1400")
	ns.MustRun(t, "ip", "tuntap", "add", "dev", "ptap", "mode", "tap")
	ns.MustRun(t, "ip", "tuntap", "add", "dev", "owned", "mode", "tun", "user", "65534")

	open := func(name string, opts Options) (d *Device, err error) {
		err = ns.Do(func() error {
			d, err = Open(name, opts)
			return err
		})
		return d, err
	}
	d, err := open("ptun", Options{NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Created() || d.MTU() != 1400 {
		t.Errorf("Created %v, MTU %d; want false, 1400", d.Created(), d.MTU())
	}

	t.Run("busy", func(t *testing.T) {
		_, err := open("ptun", Options{})
		if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), `"ptun"`) {
			t.Fatalf("second attach = %v; want EBUSY naming the device", err)
		}
		t.Log(err)
	})
	d.Close()
	if _, err := ns.Run("ip", "link", "show", "ptun"); err != nil {
		t.Fatalf("closing an attached persistent device removed it: %v", err)
	}

	t.Run("mtu option", func(t *testing.T) {
		d, err := open("ptun", Options{MTU: 1280})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d.MTU() != 1280 {
			t.Fatalf("MTU %d, want 1280", d.MTU())
		}
	})

	for _, c := range []struct{ name, want string }{
		{"ptap", "TAP"},
		{"lo", "loopback"},
	} {
		t.Run("not tun "+c.name, func(t *testing.T) {
			_, err := open(c.name, Options{})
			if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), `"`+c.name+`"`) {
				t.Fatalf("Open(%q) = %v; want EINVAL saying %q", c.name, err, c.want)
			}
			t.Log(err)
		})
	}

	t.Run("permission denied", func(t *testing.T) {
		// Capabilities belong to a thread: drop CAP_NET_ADMIN on Do's
		// thread, which is thrown away afterwards.
		var attachErr, createErr error
		err := ns.Do(func() error {
			if err := dropNetAdmin(); err != nil {
				return err
			}
			_, attachErr = Open("owned", Options{})
			_, createErr = Open("newone", Options{})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(attachErr, unix.EPERM) || !strings.Contains(attachErr.Error(), `"owned"`) {
			t.Errorf("attach to another user's device without CAP_NET_ADMIN = %v; want EPERM", attachErr)
		}
		if !errors.Is(createErr, unix.EPERM) || !strings.Contains(createErr.Error(), `"newone"`) {
			t.Errorf("create without CAP_NET_ADMIN = %v; want EPERM", createErr)
		}
		t.Log(attachErr)
		t.Log(createErr)
	})
}

// TestPatternAndPersist creates a device from a name pattern, persistent,
// so it outlives the Device.
func TestPatternAndPersist(t *testing.T) {
	ns := netns.ForTest(t)
	var d *Device
	err := ns.Do(func() error {
		var err error
		d, err = Open("tcps%d", Options{Persist: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "tcps0" || !d.Created() {
		t.Errorf("Name %q, Created %v; want tcps0, true", d.Name(), d.Created())
	}
	d.Close()
	if _, err := ns.Run("ip", "link", "show", "tcps0"); err != nil {
		t.Fatalf("a persistent device went away on Close: %v", err)
	}
}

func dropNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
	return unix.Capset(&hdr, &data[0])
}

// udp4 builds an IPv4 UDP datagram with correct checksums.
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = unix.IPPROTO_UDP
	s4, d4 := src.As4(), dst.As4()
	copy(p[12:], s4[:])
	copy(p[16:], d4[:])
	binary.BigEndian.PutUint16(p[10:], header.FinishChecksum(header.Checksum(p[:20], 0)))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	pseudo := make([]byte, 12)
	copy(pseudo, p[12:20])
	pseudo[9] = unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(8+len(payload)))
	c := header.FinishChecksum(header.Checksum(p[20:], header.Checksum(pseudo, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[26:], c)
	return p
}

// TestDeviceDeleted: deleting the device under a blocked reader ends the
// read with an error that says so.
func TestDeviceDeleted(t *testing.T) {
	ns, d := setup(t, "tcpst4", Options{})
	noIPv6(t, ns, d)
	errc := readUntilError(d)
	time.Sleep(50 * time.Millisecond)
	ns.MustRun(t, "ip", "link", "delete", "tcpst4")
	select {
	case err := <-errc:
		t.Log(err)
		if errors.Is(err, link.ErrClosed) || !strings.Contains(err.Error(), "tcpst4") {
			t.Fatalf("ReadPackets on a deleted device: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deleting the device did not end a blocked ReadPackets")
	}
	_, err := d.WritePackets([][]byte{udp4(peerAddr, kernelAddr, 1, 2, nil)})
	t.Log(err)
	if err == nil {
		t.Fatal("WritePackets to a deleted device succeeded")
	}
}

// readUntilError reads d in a goroutine, dropping what it reads, and
// reports the error that ends the reading.
func readUntilError(d *Device) <-chan error {
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		for {
			if _, err := d.ReadPackets(bufs, sizes); err != nil {
				errc <- err
				return
			}
		}
	}()
	return errc
}

// kernelUDP opens a UDP socket on the kernel's side of the device, in ns,
// closed when t ends, and returns it with its address.
func kernelUDP(t *testing.T, ns *netns.NS) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	var conn *net.UDPConn
	err := ns.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelAddr, 0)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}
