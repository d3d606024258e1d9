//go:build linux

package tun

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tcpstate/tcpstate/link"
)

// cloneDevice is the TUN/TAP clone device every TUN file is opened from;
// a variable so that a test can point it elsewhere.
var cloneDevice = "/dev/net/tun"

// Options adjust Open. The zero value attaches to the named device, or
// creates a non-persistent one, and takes the device's MTU.
type Options struct {
	// MTU, if positive, is the MTU the Device reports instead of the
	// device's own. It does not change the device; set that with
	// `ip link set NAME mtu N`.
	MTU int

	// NoCreate makes Open fail, with an error wrapping fs.ErrNotExist,
	// if no device of that name exists, instead of creating one. Use it
	// where the device is meant to be configured beforehand.
	NoCreate bool

	// Persist makes the device outlive the Device (TUNSETPERSIST), as
	// if made with `ip tuntap add`. It has no effect on a device that
	// already existed.
	Persist bool
}

// Device is an open TUN device. It implements link.Endpoint: safe for one
// reader and any number of concurrent writers (writes are serialized).
type Device struct {
	name    string
	mtu     int
	created bool
	file    *os.File
	raw     syscall.RawConn
	closed  atomic.Bool

	// The reader's state for readReady, kept here so that ReadPackets
	// need not allocate a closure per call. There is one reader.
	rbufs  [][]byte
	rsizes []int
	rn     int
	rerr   error
	readFn func(fd uintptr) bool
	// The kernel cuts a packet read into a short buffer and reports only
	// what it copied, so each read is a readv of the caller's buffer and
	// spill, which takes the rest of any IP packet; the length readv
	// returns is then the packet's.
	iov   [2]unix.Iovec
	spill []byte
}

// maxPacket is the longest packet a TUN device can hand over: the largest
// MTU Linux allows on one.
const maxPacket = 65535

var _ link.Endpoint = (*Device)(nil)

// Open attaches to the TUN device called name, creating it if it does
// not exist and opts.NoCreate is not set. An empty name, or a pattern
// such as "tcpstate%d", creates a device with a name the kernel picks;
// Name reports it. The device is opened as IFF_TUN|IFF_NO_PI: each read
// and write is one bare IPv4 or IPv6 packet.
//
// Creating a device, or attaching to one owned by another user, needs
// CAP_NET_ADMIN. The errors say which device and what went wrong: no
// /dev/net/tun, permission denied, a device that is not a TUN device or
// is attached elsewhere, or (with NoCreate) no such device; they wrap
// the underlying syscall.Errno or fs error, so errors.Is works.
func Open(name string, opts Options) (*Device, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tun: device name %q is too long (at most %d bytes)", name, unix.IFNAMSIZ-1)
	}
	if strings.ContainsAny(name, "/: \t\n") {
		return nil, fmt.Errorf("tun: %q is not a valid device name", name)
	}
	pattern := name == "" || strings.Contains(name, "%")
	existed := false
	if !pattern {
		var err error
		if existed, err = exists(name); err != nil {
			return nil, err
		}
		if !existed && opts.NoCreate {
			return nil, fmt.Errorf("tun: no device named %q (create it first, e.g. ip tuntap add dev %s mode tun): %w",
				name, name, fs.ErrNotExist)
		}
	}

	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return nil, fmt.Errorf("tun: open %s for device %q: %w (the tun driver is not available: load it with modprobe tun, or give the container the device)",
				cloneDevice, name, err)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("tun: open %s for device %q: %w (run as root or with CAP_NET_ADMIN)",
				cloneDevice, name, err)
		}
		return nil, fmt.Errorf("tun: open %s for device %q: %w", cloneDevice, name, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()

	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tun: device name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return nil, attachError(name, existed, err)
	}
	name = ifr.Name()

	if opts.Persist && !existed {
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			return nil, fmt.Errorf("tun: make device %q persistent: %w", name, err)
		}
	}

	mtu := opts.MTU
	if mtu <= 0 {
		if mtu, err = deviceMTU(name); err != nil {
			return nil, err
		}
	}

	file := os.NewFile(uintptr(fd), cloneDevice+" ("+name+")")
	if file == nil {
		return nil, fmt.Errorf("tun: device %q: bad file descriptor", name)
	}
	ok = true // file owns fd now
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("tun: device %q: %w", name, err)
	}
	d := &Device{name: name, mtu: mtu, created: !existed, file: file, raw: raw}
	d.readFn = d.readReady
	d.spill = make([]byte, maxPacket)
	d.iov[1].Base = &d.spill[0]
	d.iov[1].SetLen(len(d.spill))
	return d, nil
}

// attachError explains a failed TUNSETIFF.
func attachError(name string, existed bool, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		if existed {
			return fmt.Errorf("tun: attach to device %q: %w (it belongs to another user or group; run as root or with CAP_NET_ADMIN)", name, err)
		}
		return fmt.Errorf("tun: create device %q: %w (creating a device needs root or CAP_NET_ADMIN)", name, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("tun: attach to device %q: %w (another process has it open)", name, err)
	case errors.Is(err, unix.EINVAL) && existed:
		kind := "a device of another kind"
		switch t, terr := linkType(name); {
		case terr != nil:
		case t == unix.ARPHRD_ETHER:
			kind = "an Ethernet or TAP device"
		case t == unix.ARPHRD_NONE:
			kind = "a multi-queue or otherwise incompatible TUN device"
		case t == unix.ARPHRD_LOOPBACK:
			kind = "the loopback device"
		default:
			kind = fmt.Sprintf("a device of link type %d", t)
		}
		return fmt.Errorf("tun: attach to device %q: %w (it exists but is %s, not a plain TUN device)", name, err, kind)
	}
	return fmt.Errorf("tun: attach to device %q: %w", name, err)
}

// control runs f with a socket of the calling thread's network namespace,
// for the interface ioctls.
func control(f func(fd int) error) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tun: socket for interface ioctls: %w", err)
	}
	defer unix.Close(fd)
	return f(fd)
}

// exists reports whether there is a network device called name.
func exists(name string) (bool, error) {
	var found bool
	err := control(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
		switch {
		case err == nil:
			found = true
		case errors.Is(err, unix.ENODEV):
		default:
			return fmt.Errorf("tun: look up device %q: %w", name, err)
		}
		return nil
	})
	return found, err
}

// deviceMTU asks the kernel for the device's MTU.
func deviceMTU(name string) (int, error) {
	var mtu int
	err := control(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFMTU, ifr); err != nil {
			return fmt.Errorf("tun: read the MTU of device %q: %w", name, err)
		}
		mtu = int(ifr.Uint32())
		return nil
	})
	return mtu, err
}

// linkType returns the device's ARPHRD_ hardware type.
func linkType(name string) (uint16, error) {
	var t uint16
	err := control(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
			return err
		}
		t = ifr.Uint16() // sa_family of ifr_hwaddr
		return nil
	})
	return t, err
}

// Name returns the device's name: the one given to Open, or the one the
// kernel picked for a pattern.
func (d *Device) Name() string { return d.name }

// Created reports whether Open created the device rather than attaching
// to one that existed.
func (d *Device) Created() bool { return d.created }

// MTU returns Options.MTU if it was set, or else the device's MTU when
// it was opened.
func (d *Device) MTU() int { return d.mtu }

// ReadPackets blocks until the kernel has a packet for the device, then
// reads it and, without blocking again, as many more as are ready, up to
// min(len(bufs), len(sizes)): one read syscall per packet. A packet
// longer than its buffer is cut short, with its full length in sizes.
// Once the Device is closed it returns link.ErrClosed, unwrapped.
func (d *Device) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	want := min(len(bufs), len(sizes))
	if want == 0 || d.closed.Load() {
		if d.closed.Load() {
			return 0, link.ErrClosed
		}
		return 0, nil
	}
	d.rbufs, d.rsizes, d.rn, d.rerr = bufs[:want], sizes, 0, nil
	err := d.raw.Read(d.readFn)
	n, rerr := d.rn, d.rerr
	d.rbufs, d.rsizes = nil, nil
	if n > 0 {
		return n, nil
	}
	if d.closed.Load() {
		return 0, link.ErrClosed
	}
	if err == nil {
		err = rerr
	}
	if errors.Is(err, unix.EBADFD) {
		return 0, fmt.Errorf("tun %s: read: %w (the device was deleted)", d.name, err)
	}
	return 0, fmt.Errorf("tun %s: read: %w", d.name, err)
}

// readReady reads packets until none is ready or the buffers are full.
// It returns false, asking the poller to wait, only if it read nothing.
func (d *Device) readReady(fd uintptr) bool {
	for d.rn < len(d.rbufs) {
		m, err := d.readOne(int(fd), d.rbufs[d.rn])
		switch {
		case err == nil:
			d.rsizes[d.rn] = m
			d.rn++
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return d.rn > 0
		default:
			d.rerr = err
			return true
		}
	}
	return true
}

// readOne reads one packet into buf, spilling what does not fit, and
// returns its full length.
func (d *Device) readOne(fd int, buf []byte) (int, error) {
	if len(buf) >= maxPacket {
		return unix.Read(fd, buf)
	}
	iovs := 2
	if len(buf) == 0 {
		d.iov[0] = d.iov[1]
		iovs = 1
	} else {
		d.iov[0].Base = &buf[0]
		d.iov[0].SetLen(len(buf))
	}
	n, _, errno := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&d.iov[0])), uintptr(iovs))
	d.iov[0] = unix.Iovec{} // do not keep the caller's buffer alive
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// WritePackets writes the packets to the device, one write syscall each,
// and returns how many the kernel took. It stops at the first error,
// which names the device and the packet; the kernel refuses, for
// example, a packet whose version nibble is neither 4 nor 6 (EINVAL).
// Once the Device is closed it returns link.ErrClosed, unwrapped.
func (d *Device) WritePackets(pkts [][]byte) (int, error) {
	if d.closed.Load() {
		return 0, link.ErrClosed
	}
	for i, p := range pkts {
		if _, err := d.file.Write(p); err != nil {
			if d.closed.Load() {
				return i, link.ErrClosed
			}
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			if errors.Is(err, unix.EBADFD) {
				return i, fmt.Errorf("tun %s: write packet %d (%d bytes): %w (the device was deleted)", d.name, i, len(p), err)
			}
			return i, fmt.Errorf("tun %s: write packet %d (%d bytes): %w", d.name, i, len(p), err)
		}
	}
	return len(pkts), nil
}

// Close closes the device's file, waking a blocked ReadPackets. A device
// Open created without Options.Persist disappears with it. Close after
// the first returns nil.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if err := d.file.Close(); err != nil {
		return fmt.Errorf("tun %s: close: %w", d.name, err)
	}
	return nil
}
