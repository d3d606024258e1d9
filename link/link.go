// Package link is the bottom layer of the stack: how IP packets get in and
// out. An Endpoint moves whole IPv4 or IPv6 packets, in batches, between a
// stack and something else — a Linux TUN device (package link/tun), the
// other half of an in-memory pipe (package link/pipe), or a tap that also
// writes them to a capture.
package link

import "errors"

// ErrClosed is returned by an Endpoint's methods once it is closed.
var ErrClosed = errors.New("link: endpoint closed")

// Endpoint moves IP packets. Implementations are safe for one reader and
// any number of concurrent writers.
type Endpoint interface {
	// MTU is the largest IP packet the link carries, in bytes.
	MTU() int

	// ReadPackets blocks until at least one packet has arrived, then
	// copies up to len(bufs) packets into bufs, storing each one's length
	// in sizes, and returns how many it copied. A packet longer than its
	// buffer is cut short and its full length stored. It returns ErrClosed
	// (possibly wrapped) once the endpoint is closed.
	ReadPackets(bufs [][]byte, sizes []int) (int, error)

	// WritePackets sends the packets, in order, and returns how many were
	// sent. The caller may reuse the buffers as soon as it returns. It
	// must not wait long for room: a stack calls it with a connection's
	// lock held, so a link that blocks until the peer reads can deadlock
	// two stacks that each wait on the other (drop instead, as a NIC does).
	WritePackets(pkts [][]byte) (int, error)

	// Close releases the endpoint and wakes a blocked ReadPackets.
	Close() error
}

// MaxOffloadPacket is the longest packet an Offloader moves: the largest
// IPv4 total length, which bounds a TCP segment the kernel has not cut
// into MTU-sized packets (GSO_LEGACY_MAX_SIZE in the kernel).
const MaxOffloadPacket = 65535

// Offloader is an Endpoint that can also move TCP segments longer than
// its MTU, leaving segmentation and checksums to the other side — a TUN
// device with the kernel's offloads (IFF_VNET_HDR, TUNSETOFFLOAD). A
// stack finds it with a type assertion and uses it only if Offload
// reports nil; every Endpoint method keeps working either way, with
// plain MTU-sized packets and complete checksums.
type Offloader interface {
	Endpoint

	// Offload returns nil if the offloads are on, or else why they are
	// off (the device or kernel lacks them, or they were turned off).
	Offload() error

	// ReadPacketsOffload is ReadPackets for buffers of MaxOffloadPacket
	// bytes: a packet may be one TCP segment of up to MaxOffloadPacket
	// bytes, not cut to the MTU. trusted[i] reports that the other side
	// vouches for packet i's transport checksum, which the reader then
	// must not check: it may hold only the pseudo-header sum.
	ReadPacketsOffload(bufs [][]byte, sizes []int, trusted []bool) (int, error)

	// WriteOffload sends one IP packet, the concatenation of pieces
	// (the first holding at least the IP and TCP headers), whose IP
	// length fields count all of it. A TCP packet's checksum field must
	// hold the pseudo-header sum over its whole TCP length, folded and
	// not complemented (RFC 1071; the kernel's CHECKSUM_PARTIAL): the
	// link completes it. If mss is positive and the TCP payload is
	// longer, the link cuts it into segments of mss bytes, as TCP
	// segmentation offload does. Any other packet goes as it is.
	WriteOffload(pieces [][]byte, mss int) error
}

// MultiQueue is an Endpoint that receives on more than one queue — a TUN
// device opened with IFF_MULTI_QUEUE, where the kernel spreads packets
// over the queues by flow. A stack finds it with a type assertion and
// reads each extra queue on a goroutine of its own, so that two cores
// can take packets in at once. Writes may go to any queue; the Endpoint
// itself stays the one a stack writes to, and its Close closes the
// extra queues too.
type MultiQueue interface {
	Endpoint

	// ExtraQueues returns the queues besides the Endpoint itself, each
	// an Endpoint of the same kind (an Offloader if the Endpoint is),
	// for one reader each.
	ExtraQueues() []Endpoint
}
