package cc

import "time"

// BBR's constants (draft-cardwell-iccrg-bbr-congestion-control-00, the
// first version of BBR; section numbers below are that draft's).
const (
	// BBRHighGain, 2/ln(2): the smallest gain that lets the sending rate
	// double each round trip in Startup (§4.3.2.1). Drain uses its
	// inverse to empty the queue Startup built (§4.3.3).
	bbrHighGain  = 2.885
	bbrDrainGain = 1 / bbrHighGain
	// The cwnd gain in ProbeBW: two BDPs, so that delayed and stretched
	// ACKs do not starve the pipe (§4.3.4, §4.2.3.2).
	bbrCwndGain = 2
	// BtlBwFilterLen: the bottleneck bandwidth is the largest delivery
	// rate of the last ten round trips (§4.1.1.5).
	bbrBwRounds = 10
	// RTpropFilterLen: the round-trip propagation time is the least RTT
	// of the last ten seconds (§4.1.2.3).
	bbrRTpropWindow = 10 * time.Second
	// ProbeRTTDuration: ProbeRTT holds the window at its floor this long,
	// and at least one round trip (§4.3.5).
	bbrProbeRTTTime = 200 * time.Millisecond
	// BBRMinPipeCwnd, in segments (§4.2.3.1).
	bbrMinPipeSegs = 4
	// Startup ends once three round trips in a row grew the bandwidth
	// estimate by less than a quarter (§4.3.2.2).
	bbrFullBwGrowth = 1.25
	bbrFullBwRounds = 3
)

// bbrCycle is ProbeBW's pacing gain cycle: one round trip probing for more
// bandwidth at 5/4, one draining what the probe queued at 3/4, then six
// cruising at 1 (§4.3.4.3).
var bbrCycle = [...]float64{5.0 / 4, 3.0 / 4, 1, 1, 1, 1, 1, 1}

// bbrMode is BBR's state (§4.3).
type bbrMode uint8

const (
	bbrStartup bbrMode = iota
	bbrDrain
	bbrProbeBW
	bbrProbeRTT
)

// bwSlot is one round trip's largest delivery rate in BBR's windowed
// maximum filter.
type bwSlot struct {
	round int64
	bw    float64 // bytes per second
}

// BBR is the model-based congestion control of Cardwell et al. (BBR
// version 1, draft-cardwell-iccrg-bbr-congestion-control-00). Instead of
// reading loss as congestion it measures the path: the bottleneck
// bandwidth (BtlBw, the largest delivery rate of recent round trips) and
// the round-trip propagation time (RTprop, the least recent RTT). It paces
// at BtlBw times a gain that cycles to probe for more, and allows two
// bandwidth-delay products in flight. Random loss, which would hold a
// loss-based algorithm such as CUBIC far below the path's capacity, leaves
// the model untouched; only the round trip that finds a loss is sent by
// packet conservation (§4.2.3.4).
//
// It needs the connection's delivery-rate samples (RateController).
type BBR struct {
	mss int // SMSS in bytes
	iw  int // the initial window in bytes

	mode       bbrMode
	cwnd       int
	priorCwnd  int // the window before recovery or ProbeRTT (§4.2.3.4)
	pacingRate float64
	pacingGain float64
	cwndGain   float64

	bw          [bbrBwRounds]bwSlot
	bwRound     int64         // the round of the filter's latest sample
	rtProp      time.Duration // zero before the first sample
	rtPropStamp time.Time
	rtExpired   bool

	delivered      int64 // C.delivered of the last sample
	round          int64 // round trips counted (§4.1.1.3)
	nextRoundDeliv int64 // C.delivered at which the current round ends
	roundStart     bool

	filledPipe  bool
	fullBw      float64
	fullBwCount int

	cycleIndex int
	cycleStamp time.Time

	probeRTTDone      time.Time
	probeRTTRoundDone bool
	idleRestart       bool

	inRecovery   bool
	conservation bool // packet conservation, for the first round of a recovery
}

// NewBBR returns BBR set up for cfg, in Startup with the initial window.
func NewBBR(cfg Config) *BBR {
	mss, iw := sizes(cfg)
	return &BBR{mss: mss, iw: iw, cwnd: iw, pacingGain: bbrHighGain, cwndGain: bbrHighGain}
}

// Name returns "bbr".
func (b *BBR) Name() string { return "bbr" }

// CWnd returns the congestion window in bytes, at least one SMSS.
func (b *BBR) CWnd() int { return max(b.cwnd, b.mss) }

// SSThresh returns the largest window: BBR has no slow-start threshold.
func (b *BBR) SSThresh() int { return maxWindow }

// PacingRate returns the rate BBR sends at, in bytes per second: the
// pacing gain times BtlBw (§4.2.1). Before the first sample it is zero,
// and the initial window goes out unpaced.
func (b *BBR) PacingRate() float64 { return b.pacingRate }

// SendQuantum returns how much may go at once ahead of the pacing
// schedule (§4.2.2): one segment below 1.2 Mbit/s, two below 24 Mbit/s,
// and above that a millisecond's worth, at most 64 KiB; never less than
// a segment.
func (b *BBR) SendQuantum() int {
	switch r := b.pacingRate; {
	case r < 1.2e6/8:
		return b.mss
	case r < 24e6/8:
		return 2 * b.mss
	default:
		return max(min(int(r/1000), 64<<10), b.mss)
	}
}

// Bandwidth returns BtlBw, the bottleneck bandwidth estimate, in bytes
// per second.
func (b *BBR) Bandwidth() float64 { return b.btlBw() }

// Delivered returns C.delivered of the last sample.
func (b *BBR) Delivered() int64 { return b.delivered }

// btlBw is the windowed maximum of the delivery rate over the last
// bbrBwRounds round trips that gave the filter a sample (§4.1.1.5): round
// trips whose samples were all application-limited and low do not age
// the estimate, as Linux's windowed max filter, which moves only with its
// samples.
func (b *BBR) btlBw() float64 {
	bw := 0.0
	for _, s := range b.bw {
		if s.round > b.bwRound-bbrBwRounds {
			bw = max(bw, s.bw)
		}
	}
	return bw
}

// bdp returns gain times the estimated bandwidth-delay product in bytes,
// or the initial window before there is an estimate (§4.2.3.2).
func (b *BBR) bdp(gain float64) int {
	bw := b.btlBw()
	if bw == 0 || b.rtProp == 0 {
		return b.iw
	}
	return int(min(gain*bw*b.rtProp.Seconds(), maxWindow))
}

// OnAck does nothing: BBR works from OnRateSample, which the connection
// calls for every ACK that delivers data.
func (b *BBR) OnAck(Ack) {}

// OnRateSample updates the model from one ACK's sample and then the
// control parameters: BBRUpdateOnACK (§4.5.3).
func (b *BBR) OnRateSample(rs RateSample) {
	b.delivered = max(b.delivered, rs.Delivered)
	b.updateRound(rs)
	b.updateBtlBw(rs)
	b.checkCyclePhase(rs)
	b.checkFullPipe(rs)
	b.checkDrain(rs)
	b.updateRTprop(rs)
	b.checkProbeRTT(rs)
	b.setPacingRate()
	b.setCwnd(rs)
}

// updateRound counts round trips: one ends when a segment sent after the
// previous one ended is delivered (§4.1.1.3). Packet conservation lasts
// one round.
func (b *BBR) updateRound(rs RateSample) {
	b.roundStart = false
	if rs.Acked > 0 && rs.PriorDelivered >= b.nextRoundDeliv {
		b.nextRoundDeliv = b.delivered
		b.round++
		b.roundStart = true
		b.conservation = false
	}
}

// updateBtlBw takes the sample into the bandwidth filter, unless it was
// application-limited and below the estimate (§4.1.1.5): an idle
// application does not mean a slower path.
func (b *BBR) updateBtlBw(rs RateSample) {
	rate := rs.Rate()
	if rate == 0 || rs.AppLimited && rate < b.btlBw() {
		return
	}
	b.bwRound = b.round
	s := &b.bw[b.round%bbrBwRounds]
	if s.round != b.round {
		*s = bwSlot{round: b.round, bw: rate}
	} else if rate > s.bw {
		s.bw = rate
	}
}

// checkCyclePhase moves ProbeBW through its gain cycle, a phase per
// RTprop, leaving the probing phase early only once it has put
// 5/4 BDP in flight or found loss, and the draining phase as soon as the
// queue is gone (§4.3.4.4).
func (b *BBR) checkCyclePhase(rs RateSample) {
	if b.mode != bbrProbeBW {
		return
	}
	prior := rs.InFlight + rs.Acked
	full := rs.Now.Sub(b.cycleStamp) > b.rtProp
	next := full
	switch {
	case b.pacingGain > 1:
		next = full && (rs.Lost > 0 || prior >= b.bdp(b.pacingGain))
	case b.pacingGain < 1:
		next = full || prior <= b.bdp(1)
	}
	if next {
		b.advanceCycle(rs.Now)
	}
}

func (b *BBR) advanceCycle(now time.Time) {
	b.cycleStamp = now
	b.cycleIndex = (b.cycleIndex + 1) % len(bbrCycle)
	b.pacingGain = bbrCycle[b.cycleIndex]
}

// checkFullPipe ends Startup once three round trips in a row failed to
// grow BtlBw by a quarter: the pipe is full (§4.3.2.2).
func (b *BBR) checkFullPipe(rs RateSample) {
	if b.filledPipe || !b.roundStart || rs.AppLimited {
		return
	}
	if bw := b.btlBw(); bw >= b.fullBw*bbrFullBwGrowth {
		b.fullBw, b.fullBwCount = bw, 0
		return
	}
	b.fullBwCount++
	if b.fullBwCount >= bbrFullBwRounds {
		b.filledPipe = true
	}
}

// checkDrain moves from Startup to Drain once the pipe is full, and from
// Drain to ProbeBW once what is in flight fits the BDP (§4.3.3).
func (b *BBR) checkDrain(rs RateSample) {
	if b.mode == bbrStartup && b.filledPipe {
		b.mode = bbrDrain
		b.pacingGain, b.cwndGain = bbrDrainGain, bbrHighGain
	}
	if b.mode == bbrDrain && rs.InFlight <= b.bdp(1) {
		b.enterProbeBW(rs.Now)
	}
}

// enterProbeBW starts the gain cycle at a phase other than the draining
// one (§4.3.4.3). The draft picks it at random; this takes it from the
// round count, so runs are repeatable and flows still spread out.
func (b *BBR) enterProbeBW(now time.Time) {
	b.mode = bbrProbeBW
	b.pacingGain, b.cwndGain = 1, bbrCwndGain
	b.cycleIndex = len(bbrCycle) - 1 - int(b.round%int64(len(bbrCycle)-1))
	b.advanceCycle(now)
}

// updateRTprop keeps the least RTT of the last ten seconds (§4.1.2.3).
func (b *BBR) updateRTprop(rs RateSample) {
	b.rtExpired = b.rtProp > 0 && rs.Now.Sub(b.rtPropStamp) > bbrRTpropWindow
	if rs.RTT > 0 && (b.rtProp == 0 || rs.RTT <= b.rtProp || b.rtExpired) {
		b.rtProp, b.rtPropStamp = rs.RTT, rs.Now
	}
}

// checkProbeRTT enters ProbeRTT when RTprop has not been renewed for ten
// seconds: the window falls to four segments for 200 ms and a round trip,
// so that the queue empties and the true RTprop shows (§4.3.5).
func (b *BBR) checkProbeRTT(rs RateSample) {
	if b.mode != bbrProbeRTT && b.rtExpired && !b.idleRestart {
		b.mode = bbrProbeRTT
		b.pacingGain, b.cwndGain = 1, 1
		b.saveCwnd()
		b.probeRTTDone = time.Time{}
	}
	if b.mode == bbrProbeRTT {
		b.handleProbeRTT(rs)
	}
	if rs.Acked > 0 {
		b.idleRestart = false
	}
}

func (b *BBR) handleProbeRTT(rs RateSample) {
	switch {
	case b.probeRTTDone.IsZero() && rs.InFlight <= b.minPipe():
		b.probeRTTDone = rs.Now.Add(bbrProbeRTTTime)
		b.probeRTTRoundDone = false
		b.nextRoundDeliv = b.delivered
	case !b.probeRTTDone.IsZero():
		if b.roundStart {
			b.probeRTTRoundDone = true
		}
		if b.probeRTTRoundDone && rs.Now.After(b.probeRTTDone) {
			b.rtPropStamp = rs.Now
			b.restoreCwnd()
			if b.filledPipe {
				b.enterProbeBW(rs.Now)
			} else {
				b.mode = bbrStartup
				b.pacingGain, b.cwndGain = bbrHighGain, bbrHighGain
			}
		}
	}
}

// setPacingRate paces at the gain times BtlBw (§4.2.1). Until the pipe is
// full the rate only rises; before the first bandwidth sample it is the
// initial window per RTT times the high gain.
func (b *BBR) setPacingRate() {
	bw := b.btlBw()
	if bw == 0 {
		if b.rtProp > 0 {
			b.pacingRate = bbrHighGain * float64(b.iw) / b.rtProp.Seconds()
		}
		return
	}
	if r := b.pacingGain * bw; b.filledPipe || r > b.pacingRate {
		b.pacingRate = r
	}
}

func (b *BBR) minPipe() int { return bbrMinPipeSegs * b.mss }

// setCwnd aims the window at cwnd_gain BDPs plus three send quanta, for
// the batching of ACKs and sends (§4.2.3.2). It grows toward the target
// by what each ACK delivers, and before the pipe is full never falls;
// during the first round of a recovery it holds what is in flight plus
// what was delivered (packet conservation, §4.2.3.4); in ProbeRTT it is
// at most four segments (§4.2.3.5).
func (b *BBR) setCwnd(rs RateSample) {
	target := b.bdp(b.cwndGain) + 3*b.SendQuantum()
	if rs.Lost > 0 {
		b.cwnd = max(b.cwnd-rs.Lost, b.mss)
	}
	switch {
	case b.conservation:
		b.cwnd = max(b.cwnd, min(rs.InFlight+rs.Acked, maxWindow))
	case b.filledPipe:
		b.cwnd = min(b.cwnd+rs.Acked, target)
	case b.cwnd < target || b.delivered < int64(b.iw):
		b.cwnd += min(rs.Acked, maxWindow)
	}
	b.cwnd = min(max(b.cwnd, b.minPipe()), maxWindow)
	if b.mode == bbrProbeRTT {
		b.cwnd = min(b.cwnd, b.minPipe())
	}
}

// saveCwnd remembers the last good window before recovery or ProbeRTT
// lowers it (§4.2.3.4).
func (b *BBR) saveCwnd() {
	if !b.inRecovery && b.mode != bbrProbeRTT {
		b.priorCwnd = b.cwnd
	} else {
		b.priorCwnd = max(b.priorCwnd, b.cwnd)
	}
}

func (b *BBR) restoreCwnd() { b.cwnd = max(b.cwnd, b.priorCwnd) }

// OnCongestion starts a fast recovery: the window falls to what is in
// flight plus one segment, for the fast retransmission, and packet
// conservation holds it there for one round trip (§4.2.3.4). BBR's model
// is unchanged: a loss is not a measurement of the path.
func (b *BBR) OnCongestion(now time.Time, inFlight int) {
	b.saveCwnd()
	b.inRecovery = true
	b.conservation = true
	b.nextRoundDeliv = b.delivered // the conservation round starts now
	b.cwnd = min(max(inFlight+b.mss, b.minPipe()), maxWindow)
}

// OnRecoveryEnd restores the window from before the recovery (§4.2.3.4).
func (b *BBR) OnRecoveryEnd(now time.Time) {
	if !b.inRecovery {
		return
	}
	b.inRecovery, b.conservation = false, false
	b.restoreCwnd()
}

// OnTimeout drops the window to one segment, having saved it (§4.2.3.4);
// it grows back by what each ACK delivers.
func (b *BBR) OnTimeout(now time.Time, inFlight int) {
	b.saveCwnd()
	b.inRecovery, b.conservation = false, false
	b.cwnd = b.mss
}

// OnIdle notes a restart after idle: in ProbeBW the pacing rate returns
// to BtlBw at once, and the idle time does not send BBR into ProbeRTT
// (§4.3.4.4, BBRHandleRestartFromIdle).
func (b *BBR) OnIdle(now time.Time) {
	b.idleRestart = true
	if b.mode == bbrProbeBW {
		if bw := b.btlBw(); bw > 0 {
			b.pacingRate = bw
		}
	}
}
