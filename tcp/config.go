package tcp

import (
	"fmt"
	"time"

	"github.com/tcpstate/tcpstate/tcp/cc"
)

// Config holds the settings of a connection. The zero value of each field
// means its default, so a zero Config behaves like Linux out of the box.
// One Config may be shared by many connections; it must not change while
// they use it.
type Config struct {
	// MSL is the maximum segment lifetime (RFC 9293 §3.4.1). TIME-WAIT
	// lasts 2*MSL. Default 30 s, so TIME-WAIT lasts 60 s as on Linux.
	MSL time.Duration

	// InitialRTO is the retransmission timeout before any round trip has
	// been measured (RFC 6298 §2.1). Default 1 s. Each expiry doubles it
	// (RFC 6298 §5.5) up to MaxRTO.
	InitialRTO time.Duration

	// MinRTO is the least retransmission timeout computed from RTT
	// samples (RFC 6298 §2.4). Default 200 ms, as Linux.
	MinRTO time.Duration

	// MaxRTO caps the retransmission timeout. Default 120 s, as Linux.
	MaxRTO time.Duration

	// SynRetries is how many times a SYN is retransmitted before an active
	// open gives up with ErrTimeout. Default 6 (Linux tcp_syn_retries).
	SynRetries int

	// SynAckRetries is how many times a SYN,ACK is retransmitted before a
	// passive open gives up. Default 5 (Linux tcp_synack_retries).
	SynAckRetries int

	// DataRetries is how many times data or a FIN is retransmitted before
	// the connection gives up with ErrTimeout. Default 15 (Linux
	// tcp_retries2).
	DataRetries int

	// UserTimeout, when positive, aborts the connection with
	// ErrUserTimeout once sent data has gone unacknowledged this long
	// (RFC 9293 §3.10.8, RFC 5482). Default off.
	UserTimeout time.Duration

	// MSS is the maximum segment size announced in our SYN (RFC 9293
	// §3.7.1). Default 1460, for a 1500-byte IPv4 MTU.
	MSS uint16

	// SendBuffer and ReceiveBuffer size the connection's buffers in bytes.
	// Default 256 KiB each, from which they grow by themselves: the receive
	// buffer with the rate the application reads at (dynamic right-sizing,
	// as Linux's tcp_rcv_space_adjust), up to MaxReceiveBuffer; the send
	// buffer to twice the congestion window (as Linux's tcp_sndbuf_expand),
	// up to MaxSendBuffer. Setting one fixes its size, as SO_SNDBUF and
	// SO_RCVBUF do on Linux. Storage is allocated when data flows and
	// only as far as data needs it. Without window scaling the advertised
	// window is at most 65535.
	SendBuffer, ReceiveBuffer int

	// MaxSendBuffer and MaxReceiveBuffer bound the buffers' growth.
	// Default 32 MiB each (DefaultMaxBuffer). The window scale we offer is chosen so the whole
	// MaxReceiveBuffer can be advertised.
	MaxSendBuffer, MaxReceiveBuffer int

	// NoRACK turns off RACK-TLP (RFC 8985): time-based loss detection and
	// tail loss probes, used by default when SACK is. Without it, loss is
	// found by duplicate ACKs and SACK counts (RFC 5681, RFC 6675) and a
	// lost tail by the retransmission timer.
	NoRACK bool

	// NoWindowScale, NoTimestamps and NoSACK turn off offering the window
	// scale option (RFC 7323 §2), timestamps (RFC 7323 §3) and SACK
	// (RFC 2018). Each is used only when both sides offer it.
	NoWindowScale, NoTimestamps, NoSACK bool

	// NoDelay turns off Nagle's algorithm (RFC 9293 §3.7.4), which holds
	// back a small segment while data is unacknowledged.
	NoDelay bool

	// AckDelay is how long an ACK for in-order data may wait for more
	// data or a reply to ride on (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2).
	// A second full-sized segment, out-of-order data or a window change
	// are acknowledged at once. Default 40 ms (Linux's minimum); at most
	// 200 ms; negative acknowledges everything at once.
	AckDelay time.Duration

	// CongestionControl names the algorithm of package cc: "cubic" (the
	// default), "newreno" or "bbr". BBR works from delivery-rate samples
	// and paces the connection's segments at the rate it estimates.
	CongestionControl string

	// InitialWindow is the initial congestion window in segments. Default
	// 10 (RFC 6928).
	InitialWindow int

	// KeepAlive turns on keep-alive probes (RFC 1122 §4.2.3.6): after
	// KeepAliveIdle without traffic, a probe every KeepAliveInterval; after
	// KeepAliveCount unanswered probes the connection ends with
	// ErrTimeout. Defaults 2 h, 75 s and 9, as Linux.
	KeepAlive         bool
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int

	// RFC1337 makes TIME-WAIT ignore RST segments, as RFC 1337 §3
	// recommends against TIME-WAIT assassination. Off by default, as on
	// Linux (net.ipv4.tcp_rfc1337 = 0), where RFC 9293 §3.10.7.4 has the
	// RST close the connection.
	RFC1337 bool

	// Observer, when set, receives every event of every connection using
	// this Config.
	Observer Observer
}

// Defaults, named after what they are.
const (
	DefaultMSL        = 30 * time.Second
	DefaultInitialRTO = time.Second
	DefaultMaxRTO     = 120 * time.Second
	DefaultMinRTO     = 200 * time.Millisecond
	DefaultAckDelay   = 40 * time.Millisecond
	MaxAckDelay       = 200 * time.Millisecond
	DefaultMSS        = 1460
	DefaultBuffer     = 256 << 10
	// DefaultMaxBuffer is how far send and receive buffers grow by
	// themselves: 32 MiB, the limit of Linux's receive buffer
	// auto-tuning (tcp_rmem[2]) in current kernels, enough for 1 Gbit/s
	// over 200 ms. An idle connection holds none of it.
	DefaultMaxBuffer = 32 << 20
	// DefaultSendMSS is the MSS assumed for a peer that sends no MSS option
	// (RFC 9293 §3.7.1: 536 for IPv4).
	DefaultSendMSS = 536
)

func (c *Config) msl() time.Duration        { return orDuration(c.MSL, DefaultMSL) }
func (c *Config) initialRTO() time.Duration { return orDuration(c.InitialRTO, DefaultInitialRTO) }
func (c *Config) maxRTO() time.Duration     { return orDuration(c.MaxRTO, DefaultMaxRTO) }
func (c *Config) minRTO() time.Duration     { return orDuration(c.MinRTO, DefaultMinRTO) }
func (c *Config) keepAliveIdle() time.Duration {
	return orDuration(c.KeepAliveIdle, 2*time.Hour)
}
func (c *Config) keepAliveInterval() time.Duration {
	return orDuration(c.KeepAliveInterval, 75*time.Second)
}
func (c *Config) keepAliveCount() int { return orInt(c.KeepAliveCount, 9) }
func (c *Config) initialWindow() int  { return orInt(c.InitialWindow, 10) }

// ackDelay is the delayed-ACK timeout; zero means acknowledge at once.
func (c *Config) ackDelay() time.Duration {
	switch {
	case c.AckDelay < 0:
		return 0
	case c.AckDelay == 0:
		return DefaultAckDelay
	}
	return min(c.AckDelay, MaxAckDelay)
}

// rateBased reports whether the congestion control is a
// cc.RateController, which needs delivery-rate samples and pacing.
func (c *Config) rateBased() bool { return c.CongestionControl == "bbr" }

// Validate reports a setting that cannot work, such as an unknown
// congestion control.
func (c *Config) Validate() error {
	if _, err := cc.New(c.CongestionControl, cc.Config{MSS: DefaultMSS}); err != nil {
		return err
	}
	if c.MSS != 0 && c.MSS < 64 {
		return fmt.Errorf("tcp: MSS %d is too small (at least 64)", c.MSS)
	}
	return nil
}
func (c *Config) synRetries() int    { return orInt(c.SynRetries, 6) }
func (c *Config) synAckRetries() int { return orInt(c.SynAckRetries, 5) }
func (c *Config) dataRetries() int   { return orInt(c.DataRetries, 15) }
func (c *Config) mss() uint16 {
	if c.MSS == 0 {
		return DefaultMSS
	}
	return c.MSS
}
func (c *Config) sendBuffer() int    { return orInt(c.SendBuffer, DefaultBuffer) }
func (c *Config) receiveBuffer() int { return orInt(c.ReceiveBuffer, DefaultBuffer) }

// maxSendBuffer and maxReceiveBuffer are how far the buffers may grow: no
// further than their fixed size when one is set.
func (c *Config) maxSendBuffer() int {
	if c.SendBuffer > 0 {
		return c.SendBuffer
	}
	return max(orInt(c.MaxSendBuffer, DefaultMaxBuffer), DefaultBuffer)
}
func (c *Config) maxReceiveBuffer() int {
	if c.ReceiveBuffer > 0 {
		return c.ReceiveBuffer
	}
	return max(orInt(c.MaxReceiveBuffer, DefaultMaxBuffer), DefaultBuffer)
}

func orDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
