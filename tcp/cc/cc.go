// Package cc holds TCP congestion control algorithms behind one small
// interface: NewReno (RFC 5681, RFC 6582), CUBIC (RFC 9438, the default)
// and BBR (draft-cardwell-iccrg-bbr-congestion-control-00), which works
// from delivery-rate samples and paces (RateController).
//
// An Algorithm only decides the congestion window and the slow-start
// threshold from what the connection tells it: data acknowledged, a
// congestion event detected by duplicate ACKs or SACK, a retransmission
// timeout. Loss detection and recovery — which segments to resend and when
// — belong to the connection (package tcp); during recovery the connection
// sends by the pipe estimate of RFC 6675 and does not call OnAck.
package cc

import (
	"fmt"
	"time"
)

// Algorithm is a congestion controller for one connection. All sizes are in
// bytes. It is not safe for concurrent use.
type Algorithm interface {
	// Name is the algorithm's name: "cubic", "newreno" or "bbr".
	Name() string

	// CWnd is the congestion window: how many bytes may be in flight.
	CWnd() int

	// SSThresh is the slow-start threshold.
	SSThresh() int

	// OnAck reports that new data was acknowledged outside loss recovery.
	OnAck(ev Ack)

	// OnCongestion reports a loss detected by duplicate ACKs or SACK: the
	// connection enters fast recovery (RFC 5681 §3.2, RFC 6675 §5). The
	// algorithm lowers SSThresh and sets CWnd for the recovery.
	OnCongestion(now time.Time, inFlight int)

	// OnRecoveryEnd reports that fast recovery is over: everything
	// outstanding when it began has been acknowledged.
	OnRecoveryEnd(now time.Time)

	// OnTimeout reports that the retransmission timer expired (RFC 5681
	// §3.1, equation 4): SSThresh falls and CWnd restarts from one
	// segment.
	OnTimeout(now time.Time, inFlight int)

	// OnIdle reports that the connection sent nothing for longer than an
	// RTO; the window restarts from the initial window (RFC 5681 §4.1).
	OnIdle(now time.Time)
}

// Ack describes an acknowledgment that advanced SND.UNA.
type Ack struct {
	Now      time.Time
	Acked    int           // bytes newly acknowledged
	InFlight int           // bytes in flight before this ACK
	RTT      time.Duration // the latest RTT sample, 0 if this ACK gave none
	SRTT     time.Duration // the smoothed RTT, 0 before the first sample
	MinRTT   time.Duration // the least RTT seen, 0 before the first sample
	// AppLimited is set when the sender had less data than the window
	// allowed: the window was not the limit, so it need not grow
	// (RFC 7661).
	AppLimited bool
}

// Config sets up an algorithm for one connection.
type Config struct {
	// MSS is the sender maximum segment size (SMSS) in bytes.
	MSS int
	// InitialWindow is the initial congestion window in segments.
	// Default 10 (RFC 6928).
	InitialWindow int
}

// InitialCWnd returns the congestion window every algorithm starts with
// for cfg: the initial window, cfg.InitialWindow segments of cfg.MSS bytes
// (RFC 6928, RFC 5681 §3.1). A connection can answer with it before it
// makes its algorithm, which it does only once it has data to send.
func InitialCWnd(cfg Config) int {
	_, iw := sizes(cfg)
	return iw
}

// Names lists the algorithms New knows, the default first.
var Names = []string{"cubic", "newreno", "bbr"}

// New returns the algorithm called name ("cubic", "newreno", "bbr"; ""
// means cubic) set up for cfg.
func New(name string, cfg Config) (Algorithm, error) {
	switch name {
	case "", "cubic":
		return NewCubic(cfg), nil
	case "newreno", "reno":
		return NewNewReno(cfg), nil
	case "bbr":
		return NewBBR(cfg), nil
	}
	return nil, fmt.Errorf("cc: unknown congestion control %q (want cubic, newreno or bbr)", name)
}
