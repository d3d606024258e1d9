//go:build linux

package tun

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
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

	// NoOffload opens the device without the kernel's offloads: no
	// virtio-net header, every packet at most the MTU with its checksums
	// complete, as before offloads existed.
	NoOffload bool

	// Queues, if more than 1, opens the device with IFF_MULTI_QUEUE and
	// attaches that many queues: the kernel spreads the packets it sends
	// over them by flow, and a stack reads each on its own goroutine
	// (link.MultiQueue). A device created without IFF_MULTI_QUEUE cannot
	// take more queues (the kernel says EINVAL), nor can a multi-queue
	// device be attached as a single queue.
	Queues int
}

// ErrOffloadOff is what Device.Offload wraps when Options.NoOffload
// turned the offloads off.
var ErrOffloadOff = errors.New("tun: offloads turned off by option")

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

	// With offloads (vnet), every packet read or written starts with a
	// virtio-net header. offErr says why there are none.
	vnet   bool
	offErr error
	vhdr   [VirtioNetHdrLen]byte // the reader's header
	viov   [3]unix.Iovec
	rtrust []bool
	// A GSO packet ReadPackets is handing out as plain segments: the
	// packet in big[:pendLen], its header, and the next segment.
	big     []byte
	pendLen int
	pendHdr VirtioNetHdr
	pendSeg int
	// dropped counts packets read with a header that does not fit them.
	dropped atomic.Uint64

	// queues are a multi-queue device's further queues (Options.Queues).
	queues []*Device

	// The writers' state, under wmu.
	wmu   sync.Mutex
	whdr  [VirtioNetHdrLen]byte
	wiov  []unix.Iovec
	wn    int
	werr  error
	wrFn  func(fd uintptr) bool
	wzero [VirtioNetHdrLen]byte
}

// maxPacket is the longest packet a TUN device can hand over: the largest
// MTU Linux allows on one.
const maxPacket = 65535

var (
	_ link.Endpoint   = (*Device)(nil)
	_ link.MultiQueue = (*Device)(nil)
)

// Open attaches to the TUN device called name, creating it if it does
// not exist and opts.NoCreate is not set. An empty name, or a pattern
// such as "tcpstate%d", creates a device with a name the kernel picks;
// Name reports it. The device is opened as IFF_TUN|IFF_NO_PI: each read
// and write is one IPv4 or IPv6 packet.
//
// Unless opts.NoOffload is set, Open also asks for the kernel's offloads
// (drivers/net/tun.c): IFF_VNET_HDR, a virtio-net header before each
// packet (TUNSETVNETHDRSZ, VirtioNetHdrLen bytes), and TUNSETOFFLOAD
// with TUN_F_CSUM, TUN_F_TSO4 and TUN_F_TSO6 (and TUN_F_USO4/6 where the
// kernel has them, Linux 6.2): the kernel then hands over TCP segments
// of up to 64 KiB with their checksums left partial, and takes such
// segments to cut up itself. If the kernel refuses, the device is opened
// again without them, and Offload says why. Either way ReadPackets and
// WritePackets move plain packets of at most the MTU with complete
// checksums; the Device is a link.Offloader for a stack that can use
// the large ones.
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

	mq := opts.Queues > 1
	fd, name, offErr, err := attach(name, existed, !opts.NoOffload, mq)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()

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

	if opts.NoOffload {
		offErr = ErrOffloadOff
	}
	ok = true // newDevice owns fd now
	d, err := newDevice(fd, name, mtu, !existed, offErr)
	if err != nil {
		return nil, err
	}
	for range opts.Queues - 1 {
		// The further queues of a multi-queue device (drivers/net/tun.c:
		// tun_set_iff attaches each file as one more tfile), with the
		// first one's offloads.
		qfd, _, qerr := attachOnce(name, true, d.vnet, true)
		if qerr == nil && d.vnet {
			if qerr = setOffloads(qfd); qerr != nil {
				unix.Close(qfd)
			}
		}
		var q *Device
		if qerr == nil {
			q, qerr = newDevice(qfd, name, mtu, false, d.offErr)
		}
		if qerr != nil {
			d.Close()
			return nil, fmt.Errorf("tun: device %q: queue %d of %d: %w", name, len(d.queues)+2, opts.Queues, qerr)
		}
		d.queues = append(d.queues, q)
	}
	return d, nil
}

// newDevice makes the Device of an attached file descriptor, which it
// owns from then on (closing it on error).
func newDevice(fd int, name string, mtu int, created bool, offErr error) (*Device, error) {
	file := os.NewFile(uintptr(fd), cloneDevice+" ("+name+")")
	if file == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun: device %q: bad file descriptor", name)
	}
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("tun: device %q: %w", name, err)
	}
	d := &Device{name: name, mtu: mtu, created: created, file: file, raw: raw}
	d.vnet, d.offErr = offErr == nil, offErr
	d.readFn = d.readReady
	d.wrFn = d.writeReady
	if d.vnet {
		d.big = make([]byte, maxPacket+VirtioNetHdrLen)
	}
	d.spill = make([]byte, maxPacket)
	d.iov[1].Base = &d.spill[0]
	d.iov[1].SetLen(len(d.spill))
	return d, nil
}

// attach opens the clone device and attaches the file to the device
// called name (TUNSETIFF). With offload it asks for the virtio-net header
// and the offloads; if the kernel refuses them, it opens a plain file
// instead and returns why in offErr. It returns the device's name.
func attach(name string, existed, offload, mq bool) (fd int, devName string, offErr error, err error) {
	if offload {
		fd, devName, err = attachOnce(name, existed, true, mq)
		if err == nil {
			if offErr = setOffloads(fd); offErr == nil {
				return fd, devName, nil, nil
			}
			unix.Close(fd)
		} else {
			offErr = err
		}
	} else {
		offErr = ErrOffloadOff
	}
	fd, devName, err = attachOnce(name, existed, false, mq)
	return fd, devName, offErr, err
}

// setOffloads sets the virtio-net header's size and the offloads on a
// file attached with IFF_VNET_HDR.
func setOffloads(fd int) error {
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VirtioNetHdrLen); err != nil {
		return fmt.Errorf("tun: TUNSETVNETHDRSZ %d: %w", VirtioNetHdrLen, err)
	}
	base := tunFCsum | tunFTSO4 | tunFTSO6
	// USO first; a kernel before 6.2 refuses flags it does not know
	// (EINVAL), so try again without.
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base|tunFUSO4|tunFUSO6); err == nil {
		return nil
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base); err != nil {
		return fmt.Errorf("tun: TUNSETOFFLOAD (checksum and TSO): %w", err)
	}
	return nil
}

// attachOnce opens the clone device and attaches it to the device called
// name, with the virtio-net header if vnet, as one queue of a
// multi-queue device if mq.
func attachOnce(name string, existed, vnet, mq bool) (int, string, error) {
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return -1, "", fmt.Errorf("tun: open %s for device %q: %w (the tun driver is not available: load it with modprobe tun, or give the container the device)",
				cloneDevice, name, err)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return -1, "", fmt.Errorf("tun: open %s for device %q: %w (run as root or with CAP_NET_ADMIN)",
				cloneDevice, name, err)
		}
		return -1, "", fmt.Errorf("tun: open %s for device %q: %w", cloneDevice, name, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()

	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return -1, "", fmt.Errorf("tun: device name %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	if mq {
		flags |= unix.IFF_MULTI_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return -1, "", attachError(name, existed, err)
	}
	ok = true
	return fd, ifr.Name(), nil
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

// Offload returns nil if the device has the kernel's offloads (see
// Open), or else why not: ErrOffloadOff for Options.NoOffload, or the
// kernel's refusal.
func (d *Device) Offload() error { return d.offErr }

// Dropped counts the packets read with a virtio-net header that does not
// fit them, which the Device discards.
func (d *Device) Dropped() uint64 { return d.dropped.Load() }

var _ link.Offloader = (*Device)(nil)

// ReadPackets blocks until the kernel has a packet for the device, then
// reads it and, without blocking again, as many more as are ready, up to
// min(len(bufs), len(sizes)): one read syscall per packet. A packet
// longer than its buffer is cut short, with its full length in sizes.
// Once the Device is closed it returns link.ErrClosed, unwrapped.
//
// With offloads, ReadPackets hands out plain packets all the same: it
// completes a checksum the kernel left partial, and cuts a segment
// longer than the MTU into the packets the kernel would have sent
// without offloads, as its software GSO does, across calls if bufs are
// too few.
func (d *Device) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	return d.read(bufs, sizes, nil)
}

// ReadPacketsOffload implements link.Offloader: ReadPackets without the
// segmentation. A TCP segment longer than the MTU comes as one packet,
// up to link.MaxOffloadPacket bytes, and trusted[i] is true for a packet
// whose checksum the kernel verified or left partial (its virtio-net
// header has DATA_VALID or NEEDS_CSUM). Without offloads it is
// ReadPackets, trusting nothing.
func (d *Device) ReadPacketsOffload(bufs [][]byte, sizes []int, trusted []bool) (int, error) {
	if !d.vnet {
		n, err := d.read(bufs, sizes, nil)
		clear(trusted[:min(n, len(trusted))])
		return n, err
	}
	return d.read(bufs, sizes[:min(len(sizes), len(trusted))], trusted)
}

// read is ReadPackets and ReadPacketsOffload: trusted is nil for the
// plain packets of ReadPackets.
func (d *Device) read(bufs [][]byte, sizes []int, trusted []bool) (int, error) {
	want := min(len(bufs), len(sizes))
	if want == 0 || d.closed.Load() {
		if d.closed.Load() {
			return 0, link.ErrClosed
		}
		return 0, nil
	}
	if d.vnet && trusted == nil && d.pendLen > 0 {
		// Segments of a GSO packet are waiting: hand those out first.
		n := d.segments(bufs[:want], sizes)
		if n > 0 {
			return n, nil
		}
	}
	d.rbufs, d.rsizes, d.rtrust, d.rn, d.rerr = bufs[:want], sizes, trusted, 0, nil
	err := d.raw.Read(d.readFn)
	n, rerr := d.rn, d.rerr
	d.rbufs, d.rsizes, d.rtrust = nil, nil, nil
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
		var err error
		switch {
		case !d.vnet:
			var m int
			if m, err = d.readOne(int(fd), d.rbufs[d.rn]); err == nil {
				d.rsizes[d.rn] = m
				d.rn++
			}
		case d.rtrust != nil:
			err = d.readOffload(int(fd))
		default:
			err = d.readSegments(int(fd))
			if err == nil && d.pendLen > 0 {
				// The rest of a GSO packet waits for the next call.
				return true
			}
		}
		switch {
		case err == nil:
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

// readOffload reads one packet with its virtio-net header into the next
// of d.rbufs, for ReadPacketsOffload. A packet whose header does not fit
// it is counted and dropped.
func (d *Device) readOffload(fd int) error {
	buf := d.rbufs[d.rn]
	d.viov[0].Base = &d.vhdr[0]
	d.viov[0].SetLen(VirtioNetHdrLen)
	iovs := 2
	if len(buf) == 0 {
		d.viov[1] = d.iov[1] // spill
	} else {
		d.viov[1].Base = &buf[0]
		d.viov[1].SetLen(len(buf))
		if len(buf) < maxPacket {
			d.viov[2] = d.iov[1]
			iovs = 3
		}
	}
	n, _, errno := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&d.viov[0])), uintptr(iovs))
	d.viov[1] = unix.Iovec{}
	if errno != 0 {
		return errno
	}
	m := int(n) - VirtioNetHdrLen
	h, err := DecodeVirtioNetHdr(d.vhdr[:])
	if err != nil || m < 0 {
		d.dropped.Add(1)
		return nil
	}
	if m <= len(buf) {
		if h.Check(buf[:m]) != nil {
			d.dropped.Add(1)
			return nil
		}
	}
	d.rsizes[d.rn] = m
	d.rtrust[d.rn] = h.Trusted()
	d.rn++
	return nil
}

// readSegments reads one packet with its virtio-net header into d.big,
// for ReadPackets, and hands it out as plain packets: one, with its
// checksum complete, or the first segments of a GSO packet, the rest
// waiting in d.big.
func (d *Device) readSegments(fd int) error {
	m, err := unix.Read(fd, d.big)
	if err != nil {
		return err
	}
	m -= VirtioNetHdrLen
	h, herr := DecodeVirtioNetHdr(d.big)
	if herr != nil || m < 0 {
		d.dropped.Add(1)
		return nil
	}
	pkt := d.big[VirtioNetHdrLen : VirtioNetHdrLen+m]
	if h.Check(pkt) != nil {
		d.dropped.Add(1)
		return nil
	}
	if !h.IsGSO() {
		h.CompleteChecksum(pkt)
		buf := d.rbufs[d.rn]
		copy(buf, pkt)
		d.rsizes[d.rn] = m
		d.rn++
		return nil
	}
	d.pendHdr, d.pendLen, d.pendSeg = h, m, 0
	d.rn += d.segments(d.rbufs[d.rn:], d.rsizes[d.rn:])
	return nil
}

// segments writes the pending GSO packet's next segments into bufs and
// returns how many. A buffer too short for its segment gets as much as
// fits, with the segment's full length in sizes, as ReadPackets does.
func (d *Device) segments(bufs [][]byte, sizes []int) int {
	pkt := d.big[VirtioNetHdrLen : VirtioNetHdrLen+d.pendLen]
	total := d.pendHdr.Segments(pkt)
	n := 0
	for n < len(bufs) && d.pendSeg < total {
		m := d.pendHdr.Segment(pkt, d.pendSeg, bufs[n])
		if m == 0 {
			// Too short a buffer: segment into the spill buffer, and
			// give the caller what fits.
			m = d.pendHdr.Segment(pkt, d.pendSeg, d.spill)
			copy(bufs[n], d.spill[:m])
		}
		sizes[n] = m
		n++
		d.pendSeg++
	}
	if d.pendSeg >= total {
		d.pendLen = 0
	}
	return n
}

// WritePackets writes the packets to the device, one write syscall each,
// and returns how many the kernel took. It stops at the first error,
// which names the device and the packet; the kernel refuses, for
// example, a packet whose version nibble is neither 4 nor 6 (EINVAL).
// Once the Device is closed it returns link.ErrClosed, unwrapped. With
// offloads, each packet goes with a virtio-net header asking for nothing.
func (d *Device) WritePackets(pkts [][]byte) (int, error) {
	if d.closed.Load() {
		return 0, link.ErrClosed
	}
	if d.vnet {
		for i, p := range pkts {
			if err := d.writev(&d.wzero, [][]byte{p}); err != nil {
				return i, d.writeError(err, i, len(p))
			}
		}
		return len(pkts), nil
	}
	for i, p := range pkts {
		if _, err := d.file.Write(p); err != nil {
			return i, d.writeError(err, i, len(p))
		}
	}
	return len(pkts), nil
}

// writeError explains a failed write of packet i, n bytes long.
func (d *Device) writeError(err error, i, n int) error {
	if d.closed.Load() {
		return link.ErrClosed
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, unix.EBADFD) {
		return fmt.Errorf("tun %s: write packet %d (%d bytes): %w (the device was deleted)", d.name, i, n, err)
	}
	return fmt.Errorf("tun %s: write packet %d (%d bytes): %w", d.name, i, n, err)
}

// WriteOffload implements link.Offloader: it writes the packet made of
// pieces in one writev, after a virtio-net header that asks the kernel
// to complete a TCP packet's checksum (NEEDS_CSUM, the checksum field
// holding the pseudo-header sum) and, for a TCP payload longer than a
// positive mss, to cut it into segments of mss (GSO TCPv4 or TCPv6; the
// kernel delivering it locally takes the large segment as it is). Any
// other packet goes with a header asking for nothing. Without offloads
// it is an error.
func (d *Device) WriteOffload(pieces [][]byte, mss int) error {
	if d.closed.Load() {
		return link.ErrClosed
	}
	if !d.vnet {
		return fmt.Errorf("tun %s: write with offloads: %w", d.name, d.offErr)
	}
	if len(pieces) == 0 {
		return nil
	}
	total := 0
	for _, p := range pieces {
		total += len(p)
	}
	var h VirtioNetHdr
	h.ForPacket(pieces[0], total, mss)
	var hb [VirtioNetHdrLen]byte
	h.Encode(hb[:])
	if err := d.writev(&hb, pieces); err != nil {
		return d.writeError(err, 0, total)
	}
	return nil
}

// writev writes the header hdr and pieces as one packet.
func (d *Device) writev(hdr *[VirtioNetHdrLen]byte, pieces [][]byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.whdr = *hdr
	iov := append(d.wiov[:0], unix.Iovec{Base: &d.whdr[0]})
	iov[0].SetLen(VirtioNetHdrLen)
	for _, p := range pieces {
		if len(p) == 0 {
			continue
		}
		v := unix.Iovec{Base: &p[0]}
		v.SetLen(len(p))
		iov = append(iov, v)
	}
	d.wiov, d.wn, d.werr = iov, len(iov), nil
	err := d.raw.Write(d.wrFn)
	clear(d.wiov) // do not keep the caller's buffers alive
	if err == nil {
		err = d.werr
	}
	return err
}

// writeReady makes the writev of d.wiov; it asks the poller to wait only
// if the kernel says EAGAIN.
func (d *Device) writeReady(fd uintptr) bool {
	for {
		_, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&d.wiov[0])), uintptr(d.wn))
		switch errno {
		case 0:
			d.werr = nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			d.werr = errno
			return true
		}
	}
}

// ExtraQueues returns the queues besides d itself of a device opened with
// Options.Queues above 1 (link.MultiQueue); nil otherwise. Close on d
// closes them.
func (d *Device) ExtraQueues() []link.Endpoint {
	if len(d.queues) == 0 {
		return nil
	}
	eps := make([]link.Endpoint, len(d.queues))
	for i, q := range d.queues {
		eps[i] = q
	}
	return eps
}

// Close closes the device's file, waking a blocked ReadPackets. A device
// Open created without Options.Persist disappears with it. Close after
// the first returns nil.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	for _, q := range d.queues {
		q.Close()
	}
	if err := d.file.Close(); err != nil {
		return fmt.Errorf("tun %s: close: %w", d.name, err)
	}
	return nil
}
