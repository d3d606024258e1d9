package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// The long-fat-pipe benchmark of issue 7: one CUBIC connection over a
// 1 Gbit/s bottleneck with a 100 ms round trip, 0.1% random loss each way
// and a few packets of reordering, in virtual time. It reports the
// goodput once past slow start as a fraction of the link's capacity, and
// the spurious retransmissions: bytes the receiver got twice.
//
//	go test ./sim -run '^$' -bench LFN -benchtime 1x

// lfnSetup is one run's network and settings.
type lfnSetup struct {
	loss     float64
	reorder  float64
	noRACK   bool
	cc       string // the congestion control; "" is CUBIC
	maxBuf   int    // MaxSendBuffer and MaxReceiveBuffer; 0 is tcp's default
	warm     time.Duration
	measured time.Duration
}

// lfnResult is what one run measured.
type lfnResult struct {
	goodput   float64 // of the link's payload capacity, over the measured span
	mbps      float64 // goodput in Mbit/s
	dupBytes  int64   // payload bytes the receiver had already
	rtxSegs   uint64  // segments the sender retransmitted
	lost      int     // packets the links lost (random and queue drops)
	reordered int
	rcvWnd    uint32 // the receiver's window at the end
	cwnd      int
	fired     map[tcp.Timer]int // the sender's timers that fired, by kind
}

const (
	lfnRate  = 125_000_000 // 1 Gbit/s in bytes per second
	lfnDelay = 50 * time.Millisecond
)

// dupCounter is a Tap that counts, at the receiving host, the payload
// bytes of arriving segments that were received before: below RCV.NXT, or
// on out-of-order data already held.
type dupCounter struct {
	host  *Host
	dup   int64
	held  []seqRangeV       // out-of-order data seen, above RCV.NXT, ascending
	fired map[tcp.Timer]int // the sender's timers that fired, by kind
}

type seqRangeV struct{ start, end seqnum.Value }

func (d *dupCounter) Sent(*Host, *Conn, *tcp.Segment) {}
func (d *dupCounter) Event(h *Host, c *Conn, e *tcp.Event) {
	if e.Type == tcp.EventTimerFired && h != d.host {
		d.fired[e.Timer]++
	}
}
func (d *dupCounter) Received(h *Host, c *Conn, seg *tcp.Segment) {
	if h != d.host || c == nil || len(seg.Payload) == 0 {
		return
	}
	nxt := c.TCP().Status().RcvNxt
	start, end := seg.Seq, seg.Seq.Add(seqnum.Size(len(seg.Payload)))
	if start.LessThan(nxt) {
		d.dup += int64(start.Size(seqnum.Min(end, nxt)))
		start = seqnum.Min(end, nxt)
	}
	// Forget what RCV.NXT has passed; count the overlap with what is held.
	k := 0
	for _, r := range d.held {
		if nxt.LessThan(r.end) {
			if r.start.LessThan(nxt) {
				r.start = nxt
			}
			d.held[k] = r
			k++
		}
	}
	d.held = d.held[:k]
	if !start.LessThan(end) {
		return
	}
	for _, r := range d.held {
		a, b := seqnum.Max(start, r.start), seqnum.Min(end, r.end)
		if a.LessThan(b) {
			d.dup += int64(a.Size(b))
		}
	}
	if start == nxt {
		return // in order: it moves RCV.NXT on
	}
	// Hold it, merged with the ranges it touches, so that the list stays
	// as short as the receiver's holes are few.
	k = 0
	for _, r := range d.held {
		if r.end.LessThan(start) || end.LessThan(r.start) {
			d.held[k] = r
			k++
			continue
		}
		start, end = seqnum.Min(start, r.start), seqnum.Max(end, r.end)
	}
	d.held = append(d.held[:k], seqRangeV{start, end})
}

func runLFN(tb testing.TB, s lfnSetup) lfnResult {
	w := New(7)
	cfg := tcp.Config{NoRACK: s.noRACK, CongestionControl: s.cc, MaxSendBuffer: s.maxBuf, MaxReceiveBuffer: s.maxBuf}
	ha := w.NewHost("a", addrA, cfg)
	hb := w.NewHost("b", addrB, cfg)
	// A queue of one bandwidth-delay product at the bottleneck.
	bdpPkts := int(lfnRate * 2 * lfnDelay / time.Second / 1500)
	link := LinkConfig{Delay: lfnDelay, Rate: lfnRate, QueueLimit: bdpPkts, Loss: s.loss,
		Reorder: s.reorder, ReorderDelay: 50 * time.Microsecond}
	w.Link(ha, hb, link, link)
	dc := &dupCounter{host: hb, fired: map[tcp.Timer]int{}}
	w.SetTap(dc)
	src, accepted := streamTo(tb, ha, hb)
	src.WriteStream(1<<50, func(off int64, p []byte) {})
	w.Run(s.warm)
	dst := *accepted
	if dst == nil {
		tb.Fatal("no connection")
	}
	got0 := dst.ReceivedLen()
	w.Run(s.warm + s.measured)
	got := dst.ReceivedLen() - got0
	// The link carries 1500-byte packets: 1448 bytes of payload with
	// timestamps (1460 less 12) and 52 of headers.
	capacity := float64(lfnRate) * s.measured.Seconds() * 1448 / 1500
	st := src.TCP().Status()
	return lfnResult{
		goodput:   float64(got) / capacity,
		mbps:      float64(got) * 8 / s.measured.Seconds() / 1e6,
		dupBytes:  dc.dup,
		rtxSegs:   st.RetransSegs,
		lost:      w.Stats.Lost + w.Stats.QueueDrops,
		reordered: w.Stats.Reordered,
		rcvWnd:    dst.TCP().Status().RcvWnd,
		cwnd:      st.Cwnd,
		fired:     dc.fired,
	}
}

// BenchmarkLFN runs the long fat pipe with CUBIC (RACK-TLP on and off)
// and with BBR, each with the 0.1% loss and with none (the
// control: what the windows and buffers allow), and CUBIC also with a
// thousandth of the loss, and with the buffers' default limit
// (tcp.DefaultMaxBuffer).
//
// CUBIC cannot fill this path with 0.1% random loss: its response
// function (RFC 9438 §5.1) gives an average window of
// 1.054*RTT^0.75/p^0.75 = 1.054*0.178/0.0056 = 33 segments, 4 Mbit/s,
// whatever the implementation. BBR, which does not read random loss as
// congestion, is the algorithm for such a path.
func BenchmarkLFN(b *testing.B) {
	runs := []lfnSetup{
		{cc: "cubic", loss: 0.001},
		{cc: "cubic", loss: 0.001, noRACK: true},
		{cc: "cubic", loss: 0.000001},
		{cc: "cubic", loss: 0},
		{cc: "bbr", loss: 0.001},
		{cc: "bbr", loss: 0.01},
		{cc: "bbr", loss: 0},
	}
	for _, s := range runs {
		name := fmt.Sprintf("cc=%s/loss=%g/rack=%v", s.cc, s.loss, !s.noRACK)
		s.reorder, s.warm, s.measured = 0.001, 10*time.Second, 20*time.Second
		b.Run(name, func(b *testing.B) {
			var r lfnResult
			for b.Loop() {
				r = runLFN(b, s)
			}
			b.ReportMetric(100*r.goodput, "%capacity")
			b.ReportMetric(r.mbps, "Mbit/s")
			b.ReportMetric(float64(r.dupBytes), "spurious-rtx-bytes")
			b.ReportMetric(float64(r.rtxSegs), "rtx-segs")
			b.ReportMetric(float64(r.lost), "pkts-lost")
			b.ReportMetric(float64(r.rcvWnd), "rcv-wnd-B")
			b.ReportMetric(float64(r.fired[tcp.TimerRetransmit]), "rto-fired")
		})
	}
}
