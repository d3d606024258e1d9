package sim

import "github.com/tcpstate/tcpstate/tcp"

// Tap watches a run at the hosts' edges, for tests that check invariants
// as it goes (see World.SetTap). Every pointer it is handed is valid only
// during the call, and a Tap must not call back into the World or make
// calls on connections (reading their Status is fine).
type Tap interface {
	// Sent: host h hands seg to the network. c is the connection that
	// sent it, or nil for a segment the host sends itself (an RST for a
	// segment that matches no connection) or one injected with
	// Host.Inject.
	Sent(h *Host, c *Conn, seg *tcp.Segment)
	// Received: seg arrived at h intact — it parsed, its checksums held
	// and its destination is h — and is about to go to connection c, or
	// to the host itself when c is nil.
	Received(h *Host, c *Conn, seg *tcp.Segment)
	// Event: connection c of host h reported e.
	Event(h *Host, c *Conn, e *tcp.Event)
}
