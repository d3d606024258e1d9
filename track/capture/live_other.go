//go:build !linux

package capture

import (
	"errors"
	"time"
)

// DefaultSnapLen is the snap length OpenLive uses when given 0 or less.
const DefaultSnapLen = 262144

// liveSource exists only on Linux.
type liveSource struct{}

// OpenLive captures from a network interface; it needs Linux's AF_PACKET
// sockets and fails elsewhere.
func OpenLive(iface string, snaplen int) (*Reader, error) {
	return nil, errors.New("capture: live capture needs Linux (AF_PACKET)")
}

func (ls *liveSource) next(r *Reader) ([]byte, int, LinkType, time.Time, error) {
	return nil, 0, 0, time.Time{}, errors.New("capture: live capture needs Linux")
}

func (ls *liveSource) close() error { return nil }

// SetReadDeadline sets a deadline for Next on a live capture; it does
// nothing for a file.
func (r *Reader) SetReadDeadline(t time.Time) error { return nil }
