//go:build linux

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultSnapLen is the snap length OpenLive uses when given 0 or less:
// libpcap's default, enough for any packet without jumbograms.
const DefaultSnapLen = 262144

// liveSource reads frames from an AF_PACKET socket (packet(7)). All that
// recvmsg needs lives here, so a read allocates nothing.
type liveSource struct {
	f       *os.File
	rc      syscall.RawConn
	ifindex int32
	// cooked is set for a SOCK_DGRAM socket: frames arrive without a
	// link-layer header and the sockaddr's protocol names them.
	cooked bool
	// skipOutgoing drops the copies of sent frames on a loopback device,
	// which sees each frame once sent and once received (libpcap's
	// pcap-linux.c does the same).
	skipOutgoing bool

	buf   []byte
	oob   [8]uint64 // control messages, 8-byte aligned for Cmsghdr
	sa    unix.RawSockaddrLinklayer
	iov   unix.Iovec
	msg   unix.Msghdr
	n     int
	oobn  int
	errno syscall.Errno
	recv  func(fd uintptr) bool

	// closed is set by Close, so that the read it interrupts reports
	// io.EOF (RawConn.Read returns internal/poll's own error then).
	closed atomic.Bool
}

// htons converts v to network byte order, as packet(7) wants protocols.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// OpenLive captures the frames that the network interface iface (in the
// calling thread's network namespace) sends and receives, through an
// AF_PACKET socket; it needs root or CAP_NET_RAW. snaplen bounds the
// bytes kept of each frame (DefaultSnapLen if 0 or less); PayloadLen and
// Wire still tell the full lengths. Timestamps are the kernel's
// (SO_TIMESTAMPNS).
//
// Interfaces with Ethernet framing (ARPHRD_ETHER, and ARPHRD_LOOPBACK,
// whose frames carry an Ethernet header too) are read raw and decoded as
// Ethernet; any other type (ARPHRD_NONE of a TUN device, tunnels, PPP) is
// read through a SOCK_DGRAM socket, which strips whatever link-layer
// header there is and names the protocol, the way libpcap falls back to
// Linux cooked capture. Next returns io.EOF once Close has been called,
// and os.ErrDeadlineExceeded after a deadline set by SetReadDeadline.
func OpenLive(iface string, snaplen int) (*Reader, error) {
	if snaplen <= 0 {
		snaplen = DefaultSnapLen
	}
	ls := &liveSource{buf: make([]byte, snaplen)}
	ls.recv = ls.recvmsg
	typ := unix.SOCK_RAW
	for {
		fd, err := unix.Socket(unix.AF_PACKET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return nil, fmt.Errorf("capture: packet socket for %s: %w", iface, err)
		}
		arphrd, err := ls.setup(fd, iface)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		if typ == unix.SOCK_RAW && arphrd != unix.ARPHRD_ETHER && arphrd != unix.ARPHRD_LOOPBACK {
			unix.Close(fd)
			typ = unix.SOCK_DGRAM
			ls.cooked = true
			continue
		}
		ls.skipOutgoing = arphrd == unix.ARPHRD_LOOPBACK
		ls.f = os.NewFile(uintptr(fd), "packet socket on "+iface)
		break
	}
	rc, err := ls.f.SyscallConn()
	if err != nil {
		ls.f.Close()
		return nil, fmt.Errorf("capture: packet socket for %s: %w", iface, err)
	}
	ls.rc = rc
	return &Reader{format: formatLive, live: ls}, nil
}

// setup finds iface's index and hardware type on fd, binds fd to it and
// asks for timestamps. It returns the ARPHRD_ type.
func (ls *liveSource) setup(fd int, iface string) (uint16, error) {
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return 0, fmt.Errorf("capture: interface %q: %w", iface, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("capture: interface %q: %w", iface, err)
	}
	ls.ifindex = int32(ifr.Uint32())
	ifr, _ = unix.NewIfreq(iface)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("capture: interface %q: hardware type: %w", iface, err)
	}
	// The hardware address is a struct sockaddr whose family is the
	// ARPHRD_ type (netdevice(7), SIOCGIFHWADDR).
	arphrd := ifr.Uint16()
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: int(ls.ifindex)}
	if err := unix.Bind(fd, sa); err != nil {
		return 0, fmt.Errorf("capture: binding to %q: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return 0, fmt.Errorf("capture: SO_TIMESTAMPNS: %w", err)
	}
	// A larger receive buffer rides out bursts; failing to get one is
	// not fatal.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	return arphrd, nil
}

// recvmsg receives one frame; it is the RawConn.Read callback, and
// returns false to wait for the socket to become readable.
func (ls *liveSource) recvmsg(fd uintptr) bool {
	ls.iov.Base = &ls.buf[0]
	ls.iov.SetLen(len(ls.buf))
	ls.msg.Name = (*byte)(unsafe.Pointer(&ls.sa))
	ls.msg.Namelen = uint32(unsafe.Sizeof(ls.sa))
	ls.msg.Iov = &ls.iov
	ls.msg.SetIovlen(1)
	ls.msg.Control = (*byte)(unsafe.Pointer(&ls.oob[0]))
	ls.msg.SetControllen(int(unsafe.Sizeof(ls.oob)))
	// MSG_TRUNC makes recvmsg return the frame's real length even when
	// the buffer held less (packet(7)).
	n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&ls.msg)), unix.MSG_TRUNC)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	ls.n, ls.oobn, ls.errno = int(n), int(ls.msg.Controllen), e
	return true
}

// next receives one frame. It returns nil data for a frame it drops
// before decoding (another interface's, before the bind took effect, or a
// loopback duplicate), and ErrNotTCP for a cooked frame that is not IP.
func (ls *liveSource) next(r *Reader) ([]byte, int, LinkType, time.Time, error) {
	if err := ls.rc.Read(ls.recv); err != nil {
		if ls.closed.Load() || errors.Is(err, os.ErrClosed) {
			return nil, 0, 0, time.Time{}, io.EOF
		}
		return nil, 0, 0, time.Time{}, err
	}
	if ls.errno != 0 {
		return nil, 0, 0, time.Time{}, fmt.Errorf("capture: recvmsg: %w", ls.errno)
	}
	if ls.sa.Ifindex != ls.ifindex || ls.skipOutgoing && ls.sa.Pkttype == unix.PACKET_OUTGOING {
		return nil, 0, 0, time.Time{}, nil
	}
	r.read.Add(int64(ls.n))
	data := ls.buf[:min(ls.n, len(ls.buf))]
	ts := ls.timestamp()
	link := LinkEthernet
	if ls.cooked {
		switch binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&ls.sa.Protocol))[:]) {
		case etherTypeIPv4, etherTypeIPv6, 0:
			link = LinkRaw
		default:
			return nil, 0, 0, time.Time{}, ErrNotTCP
		}
	}
	return data, ls.n, link, ts, nil
}

// timestamp finds the SCM_TIMESTAMPNS control message (socket(7),
// SO_TIMESTAMPNS) and returns its time, or now if there is none.
func (ls *liveSource) timestamp() time.Time {
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&ls.oob[0])), unsafe.Sizeof(ls.oob))
	oob = oob[:min(ls.oobn, len(oob))]
	hdr := unix.CmsgLen(0)
	for off := 0; off+hdr <= len(oob); {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		l := int(h.Len)
		if l < hdr || l > len(oob)-off {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l-hdr >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[off+hdr]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		off += unix.CmsgSpace(l - hdr)
	}
	return time.Now()
}

// SetReadDeadline sets a deadline for Next on a live capture: past it,
// Next returns an error wrapping os.ErrDeadlineExceeded. The zero time
// means none. It does nothing for a file.
func (r *Reader) SetReadDeadline(t time.Time) error {
	if r.live == nil {
		return nil
	}
	return r.live.f.SetReadDeadline(t)
}

func (ls *liveSource) close() error {
	ls.closed.Store(true)
	return ls.f.Close()
}
