package cc

import "time"

// Limits and defaults shared by the algorithms.
const (
	// maxWindow bounds both windows so that no sequence of events can
	// overflow them. TCP cannot use more: the largest window the window
	// scale option can announce is just under 2^30 bytes (RFC 7323 §2.3).
	// It is also the "arbitrarily high" initial ssthresh (RFC 5681 §3.1).
	maxWindow = 1 << 30

	// maxMSS is the largest SMSS the 16-bit MSS option can announce
	// (RFC 9293 §3.7.1).
	maxMSS = 65535

	// defaultMSS is the SMSS assumed when the configuration gives none:
	// the default send MSS for IPv4 (RFC 9293 §3.7.1).
	defaultMSS = 536

	// defaultIW is the initial window in segments when the configuration
	// gives none (RFC 6928).
	defaultIW = 10

	// defaultRTT stands in for the round-trip time before the connection
	// has measured one.
	defaultRTT = 100 * time.Millisecond
)

// sizes turns cfg into the SMSS and the initial window in bytes, both
// within the limits above: the SMSS in [1, maxMSS], the initial window in
// [SMSS, maxWindow].
func sizes(cfg Config) (mss, iw int) {
	mss = cfg.MSS
	if mss <= 0 {
		mss = defaultMSS
	}
	mss = min(mss, maxMSS)
	n := cfg.InitialWindow
	if n <= 0 {
		n = defaultIW
	}
	n = min(n, maxWindow/mss)
	return mss, max(n*mss, mss)
}

// rttOf picks the round-trip time an ACK reports for the window formulas:
// the smoothed RTT (RFC 6298), else the least RTT seen, else defaultRTT.
func rttOf(ev *Ack) time.Duration {
	switch {
	case ev.SRTT > 0:
		return ev.SRTT
	case ev.MinRTT > 0:
		return ev.MinRTT
	}
	return defaultRTT
}
