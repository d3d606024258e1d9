package tcp

import (
	"time"

	"github.com/tcpstate/tcpstate/seqnum"
)

// Buffer auto-tuning: the receive buffer, and so the window advertised,
// grows with the rate the application reads at; the send buffer with the
// congestion window. A connection that needs a large window gets one
// without configuration, and one that does not spends no memory on it:
// the rings' storage follows the data, not the limit.

// rcvSpaceAdjust is dynamic right-sizing, as Linux's tcp_rcv_space_adjust
// (net/ipv4/tcp_input.c): once per round trip, the bytes the application
// read during it are measured, and the receive buffer grows to twice that
// plus room for a few segments, so the window never limits a sender whose
// rate the reader keeps up with. It never shrinks, and stops at
// MaxReceiveBuffer.
func (c *Conn) rcvSpaceAdjust(now time.Time) {
	maxBuf := c.cfg.maxReceiveBuffer()
	if !c.hasRTT || c.rcv.capacity() >= maxBuf {
		return
	}
	read := c.rcvNxt.Sub(seqnum.Size(c.rcv.len())) // the next byte the reader will take
	ms := uint32(now.UnixMilli()) | 1              // zero means no measurement yet
	if c.rcvqTime == 0 {
		c.rcvqSeq, c.rcvqTime = read, ms
		return
	}
	if time.Duration(ms-c.rcvqTime)*time.Millisecond < c.srtt {
		return
	}
	n := int(c.rcvqSeq.Size(read))
	if want := 2*n + 16*int(c.cfg.mss()); want > c.rcv.capacity() {
		c.rcv.grow(min(want, maxBuf))
		c.maybeWindowUpdate(now)
	}
	c.rcvqSeq, c.rcvqTime = read, ms
}

// growSendBuffer lets the send buffer hold twice the congestion window, as
// Linux's tcp_sndbuf_expand, so a sender on a long fat pipe is limited by
// the network and not by how much it may queue.
func (c *Conn) growSendBuffer() {
	if want := 2 * c.cwnd(); want > c.snd.capacity() {
		c.snd.grow(min(want, c.cfg.maxSendBuffer()))
	}
}
