package header

import "github.com/tcpstate/tcpstate/seqnum"

// TCP option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const (
	OptEOL           = 0
	OptNOP           = 1
	OptMSS           = 2
	OptWindowScale   = 3
	OptSACKPermitted = 4
	OptSACK          = 5
	OptTimestamps    = 8
)

// MaxSACKBlocks is the most SACK blocks a TCP header can carry (RFC 2018 §3:
// 40 bytes of option space hold four; three fit beside timestamps).
const MaxSACKBlocks = 4

// SACKBlock is one block of a SACK option: the peer holds [Left, Right).
type SACKBlock struct {
	Left, Right seqnum.Value
}

// TCPOptions is the parsed form of a TCP header's options. The zero value
// carries no options. It is a plain value, so parsing into one allocates
// nothing.
type TCPOptions struct {
	// MSS is the maximum segment size offered (RFC 9293 §3.7.1); valid
	// when HasMSS.
	MSS    uint16
	HasMSS bool

	// WindowScale is the shift count offered (RFC 7323 §2); valid when
	// HasWindowScale.
	WindowScale    uint8
	HasWindowScale bool

	// SACKPermitted is set when the SACK-permitted option is present
	// (RFC 2018 §2).
	SACKPermitted bool

	// TSVal and TSEcr are the timestamp option's fields (RFC 7323 §3);
	// valid when HasTimestamps.
	TSVal, TSEcr  uint32
	HasTimestamps bool

	// SACKBlocks[:NumSACK] are the SACK blocks carried (RFC 2018 §3).
	SACKBlocks [MaxSACKBlocks]SACKBlock
	NumSACK    int
}
