package tcp

import (
	"fmt"
	"net/netip"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// Tuple names a connection by its two sockets (RFC 9293 §3.3.1), seen from
// the local end.
type Tuple struct {
	Local, Remote netip.AddrPort
}

// String writes the tuple as "local->remote".
func (t Tuple) String() string { return t.Local.String() + "->" + t.Remote.String() }

// Reverse returns the tuple as the remote end sees it.
func (t Tuple) Reverse() Tuple { return Tuple{Local: t.Remote, Remote: t.Local} }

// Segment is a TCP segment as the state machine sees it: the header fields
// of RFC 9293 §3.1 that TCP itself interprets, the parsed options, and the
// payload. Addresses and ports are not here; they belong to the Conn's
// Tuple.
//
// A Segment passed to Conn.Input is only read during the call. A Segment
// passed to Output.Send is only valid during that call: its Payload refers
// to the connection's send buffer.
type Segment struct {
	Seq, Ack seqnum.Value
	Flags    header.TCPFlags
	Window   uint16
	Urgent   uint16
	Options  header.TCPOptions
	Payload  []byte
}

// Len is SEG.LEN: the payload length plus one for SYN and one for FIN, the
// amount of sequence space the segment occupies (RFC 9293 §3.4).
func (s *Segment) Len() seqnum.Size {
	n := seqnum.Size(len(s.Payload))
	if s.Flags&header.SYN != 0 {
		n++
	}
	if s.Flags&header.FIN != 0 {
		n++
	}
	return n
}

// Info summarizes the segment for events and logs.
func (s *Segment) Info() SegmentInfo {
	return SegmentInfo{Seq: s.Seq, Ack: s.Ack, Flags: s.Flags, Window: s.Window, Len: len(s.Payload)}
}

// String writes the segment as RFC 9293 writes them in its examples:
// <SEQ=100><ACK=300><CTL=SYN,ACK>, with window and length.
func (s *Segment) String() string { return s.Info().String() }

// SegmentInfo is the part of a segment that events carry: the control bits,
// the sequence and acknowledgment numbers, the window and the payload length.
type SegmentInfo struct {
	Seq    seqnum.Value    `json:"seq"`
	Ack    seqnum.Value    `json:"ack"`
	Flags  header.TCPFlags `json:"-"`
	Window uint16          `json:"win"`
	Len    int             `json:"len"`
}

// String writes the summary in the RFC's angle-bracket notation.
func (i SegmentInfo) String() string {
	s := fmt.Sprintf("<SEQ=%d>", i.Seq)
	if i.Flags&header.ACK != 0 {
		s += fmt.Sprintf("<ACK=%d>", i.Ack)
	}
	s += "<CTL=" + i.Flags.String() + ">"
	s += fmt.Sprintf("<WND=%d>", i.Window)
	if i.Len > 0 {
		s += fmt.Sprintf("<LEN=%d>", i.Len)
	}
	return s
}

// SeqLen is the sequence space the summarized segment occupies.
func (i SegmentInfo) SeqLen() seqnum.Size {
	n := seqnum.Size(i.Len)
	if i.Flags&header.SYN != 0 {
		n++
	}
	if i.Flags&header.FIN != 0 {
		n++
	}
	return n
}
