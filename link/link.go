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
	// sent. The caller may reuse the buffers as soon as it returns.
	WritePackets(pkts [][]byte) (int, error)

	// Close releases the endpoint and wakes a blocked ReadPackets.
	Close() error
}
