package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// Option negotiation and use: the MSS (RFC 9293 §3.7.1), window scaling
// (RFC 7323 §2), timestamps (RFC 7323 §3–§5) and SACK (RFC 2018). Each
// option other than the MSS is used only when both SYNs carry it.

// tsOptionLen is what the timestamps option costs every segment once
// negotiated, padding included (RFC 7323 Appendix A layout).
const tsOptionLen = 12

// maxWindowShift is the largest window scale shift (RFC 7323 §2.3).
const maxWindowShift = 14

// ourWindowShift is the shift we offer: the least that lets the window
// field cover the whole receive buffer as far as auto-tuning may grow it.
func (c *Conn) ourWindowShift() uint8 {
	var s uint8
	for s < maxWindowShift && max(c.rcv.capacity(), c.cfg.maxReceiveBuffer())>>s > 0xFFFF {
		s++
	}
	return s
}

// synOptions fills in the options of our SYN or SYN,ACK. A SYN,ACK offers
// only what the peer's SYN offered (RFC 7323 §1.3, RFC 2018 §2).
func (c *Conn) synOptions(now time.Time, o *header.TCPOptions, synAck bool) {
	o.MSS, o.HasMSS = c.cfg.mss(), true
	if !c.cfg.NoWindowScale && (!synAck || c.wsOK) {
		o.WindowScale, o.HasWindowScale = c.rcvShift, true
	}
	if !c.cfg.NoSACK && (!synAck || c.sackOK) {
		o.SACKPermitted = true
	}
	if !c.cfg.NoTimestamps && (!synAck || c.tsOK) {
		o.HasTimestamps = true
		o.TSVal = c.tsNow(now)
		o.TSEcr = c.tsRecent
	}
}

// takeSynOptions records what the peer's SYN (or SYN,ACK) announces. When
// we are answering a SYN, it decides what our SYN,ACK offers; when the SYN
// answers ours, an option stands only if both sides offered it — which our
// SYN did exactly when the Config allows it.
func (c *Conn) takeSynOptions(seg *Segment) {
	o := &seg.Options
	c.peerMSS = c.defaultSendMSS()
	if o.HasMSS && o.MSS > 0 {
		c.peerMSS = int(o.MSS)
	}
	c.wsOK = o.HasWindowScale && !c.cfg.NoWindowScale
	c.sackOK = o.SACKPermitted && !c.cfg.NoSACK
	c.tsOK = o.HasTimestamps && !c.cfg.NoTimestamps
	if c.wsOK {
		// RFC 7323 §2.3: a shift above 14 is taken as 14.
		c.sndShift = min(o.WindowScale, maxWindowShift)
	} else {
		c.sndShift, c.rcvShift = 0, 0
	}
	if c.tsOK {
		c.tsRecent = o.TSVal
	}
	// The largest payload we send: the smaller MSS, less what the
	// timestamps option takes from every segment (RFC 6691 §2).
	c.sndMSS = min(c.peerMSS, int(c.cfg.mss()))
	if c.tsOK {
		c.sndMSS -= tsOptionLen
	}
	c.sndMSS = max(c.sndMSS, 1)
}

// tsNow is our timestamp clock: milliseconds, offset per connection so
// that timestamps do not reveal the host's clock (RFC 7323 §5.4). The
// clock must not run backwards (RFC 7323 §5.4: "monotone non-decreasing"),
// or the peer's PAWS test drops our segments; a runtime may hand a
// connection a time read before one it has already used (a batch of
// packets read at one instant, an application's call in between), so the
// value never goes below the last one sent.
func (c *Conn) tsNow(now time.Time) uint32 {
	v := uint32(now.UnixMilli()) + c.tsOffset
	if c.tsSent && int32(v-c.tsLast) < 0 {
		v = c.tsLast
	}
	c.tsLast, c.tsSent = v, true
	return v
}

// segOptions fills in the options of a non-SYN segment: timestamps, and
// SACK blocks for the out-of-order data we hold (RFC 2018 §4: the block
// holding the latest arrival first).
func (c *Conn) segOptions(now time.Time, o *header.TCPOptions) {
	if c.tsOK {
		o.HasTimestamps = true
		o.TSVal = c.tsNow(now)
		o.TSEcr = c.tsRecent
	}
	if !c.sackOK {
		return
	}
	limit := header.MaxSACKBlocks
	if c.tsOK {
		limit = 3
	}
	if c.dsackStart != c.dsackEnd {
		// RFC 2883 §4: a D-SACK block goes first, once, in the ACK that
		// follows the duplicate; the blocks of out-of-order data follow.
		o.SACKBlocks[0] = header.SACKBlock{Left: c.dsackStart, Right: c.dsackEnd}
		o.NumSACK = 1
		c.dsackEnd = c.dsackStart
	}
	if !c.ooo.empty() {
		last := c.ooo.last()
		o.SACKBlocks[o.NumSACK] = header.SACKBlock{Left: c.ooo.at(last).start, Right: c.ooo.at(last).end}
		o.NumSACK++
		for i := c.ooo.len() - 1; i >= 0 && o.NumSACK < limit; i-- {
			if i == last {
				continue
			}
			o.SACKBlocks[o.NumSACK] = header.SACKBlock{Left: c.ooo.at(i).start, Right: c.ooo.at(i).end}
			o.NumSACK++
		}
	}
}

// sackOptionLen is the option space SACK blocks take in our next segment.
func (c *Conn) sackOptionLen() int {
	n := c.ooo.len()
	if c.dsackStart != c.dsackEnd {
		n++
	}
	if !c.sackOK || n == 0 {
		return 0
	}
	n = min(n, header.MaxSACKBlocks)
	if c.tsOK {
		n = min(n, 3)
	}
	return 4 + 8*n // NOP, NOP, kind, length, and 8 bytes a block
}

// pawsReject reports whether an arriving segment fails the PAWS test of
// RFC 7323 §5.3 R1: its timestamp is older than TS.Recent.
func (c *Conn) pawsReject(seg *Segment) bool {
	if !c.tsOK || !seg.Options.HasTimestamps || seg.Flags&header.RST != 0 {
		return false
	}
	return int32(seg.Options.TSVal-c.tsRecent) < 0
}

// updateTSRecent keeps TS.Recent as RFC 7323 §4.3 (2) says: from a segment
// whose timestamp is not older and that starts at or before the last ACK
// we sent.
func (c *Conn) updateTSRecent(seg *Segment) {
	if c.tsOK && seg.Options.HasTimestamps &&
		int32(seg.Options.TSVal-c.tsRecent) >= 0 && seg.Seq.LessThanEq(c.lastAckSent) {
		c.tsRecent = seg.Options.TSVal
	}
}

// takeSACK adds the peer's SACK blocks above SND.UNA to the scoreboard
// (RFC 6675 §4's Update) and reports whether any of it was new.
// noteDuplicate records that [start, end) arrived again: our next ACK
// reports it in a D-SACK block (RFC 2883 §4), and goes at once, so the
// sender learns soon that it retransmitted what had arrived. Only the
// latest duplicate is reported.
func (c *Conn) noteDuplicate(start, end seqnum.Value) {
	if !c.sackOK || !start.LessThan(end) {
		return
	}
	c.dsackStart, c.dsackEnd = start, end
	c.ackNow, c.ackReason = true, ReasonDuplicate
}

// hasDSACK reports whether an arriving segment's first SACK block is a
// D-SACK block (RFC 2883 §4.2): below its cumulative acknowledgment, or
// within its second block.
func hasDSACK(seg *Segment) bool {
	if seg.Options.NumSACK == 0 {
		return false
	}
	b := seg.Options.SACKBlocks[0]
	if b.Right.LessThanEq(seg.Ack) {
		return true
	}
	if seg.Options.NumSACK > 1 {
		b2 := seg.Options.SACKBlocks[1]
		return b2.Left.LessThanEq(b.Left) && b.Right.LessThanEq(b2.Right)
	}
	return false
}

func (c *Conn) takeSACK(seg *Segment) bool {
	if !c.sackOK || seg.Options.NumSACK == 0 {
		return false
	}
	grew := false
	for i := 0; i < seg.Options.NumSACK && i < header.MaxSACKBlocks; i++ {
		b := seg.Options.SACKBlocks[i]
		left, right := seqnum.Max(b.Left, c.sndUna), b.Right
		// Ignore blocks outside what we sent (RFC 2018 §8: be robust).
		if !left.LessThan(right) || c.sndNxt.LessThan(right) {
			continue
		}
		before, _ := c.sacked.bytesAbove(c.sndUna)
		c.sacked.add(left, right)
		after, _ := c.sacked.bytesAbove(c.sndUna)
		grew = grew || after > before
	}
	return grew
}
