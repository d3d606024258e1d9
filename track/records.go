package track

import (
	"net/netip"
	"sort"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// Find returns the connections between a and b (either order), oldest
// first.
func (t *Tracker) Find(a, b netip.AddrPort) []*Conn {
	var out []*Conn
	for _, r := range t.conns {
		if c := t.slab.at(r); c.matches(a, b) {
			out = append(out, c)
		}
	}
	return out
}

// Kept reports whether c's packets were kept (Config.Keep), so that
// Records can draw it.
func (c *Conn) Kept() bool { return c.flag(cfKeep) }

// Host names of the two sides in Records.
const (
	HostClient = "client"
	HostServer = "server"
)

// Records returns a kept connection as a two-host trace for the ladder
// renderers (trace.Ladder, trace.LadderSVG): each packet is a
// segment-out at its sender and a segment-in at its receiver in the same
// Step with the same Pkt, and each inferred state change of either
// endpoint is a KindState record with its cause. A packet that crossed
// one from the other side (its receiver sent something before it
// arrived) arrives in a later step; one whose loss a retransmission
// revealed ends in a KindLost record. Call Tracker.Finish first, so that
// pending deliveries are drawn. Times count from the connection's first
// packet.
func (c *Conn) Records() []trace.Record {
	if !c.flag(cfKeep) {
		return nil
	}
	x := c.x
	first := c.First()
	hosts := [2]string{HostClient, HostServer}
	tuples := [2]tcp.Tuple{{Local: c.Client(), Remote: c.Server()}, {Local: c.Server(), Remote: c.Client()}}
	recs := []trace.Record{
		{Host: HostClient, Addr: c.Client().Addr(), Kind: trace.KindHost, Conn: tuples[0]},
		{Host: HostServer, Addr: c.Server().Addr(), Kind: trace.KindHost, Conn: tuples[1]},
	}
	n := len(x.pkts)
	lost := map[int]bool{}
	for _, k := range x.lost {
		lost[k] = true
	}
	// Packets are drawn in the order their sender sent them, as inferred
	// (see Tracker.order), which differs from the capture's when packets
	// overtook others before the capture point.
	seq := make([]int, 0, n)
	pos := make([]int, n)
	for i := range pos {
		pos[i] = -1
	}
	for _, k := range x.order {
		if k < n && pos[k] < 0 {
			pos[k] = len(seq)
			seq = append(seq, k)
		}
	}
	for k := range pos {
		if pos[k] < 0 {
			pos[k] = len(seq)
			seq = append(seq, k)
		}
	}
	// Where each packet is delivered: its own step, or later when its
	// receiver sent something before receiving it.
	deliverAt := make([]int, n)
	for k := range deliverAt {
		deliverAt[k] = k
	}
	var sendTr, recvTr [][]transition // per packet
	sendTr = make([][]transition, n)
	recvTr = make([][]transition, n)
	var timers []transition
	var timerSide []int
	for d := range x.trans {
		for _, tr := range x.trans[d] {
			switch {
			case tr.pkt < 0 || tr.pkt >= n:
				timers = append(timers, tr)
				timerSide = append(timerSide, d)
			case tr.send:
				sendTr[tr.pkt] = append(sendTr[tr.pkt], tr)
			default:
				recvTr[tr.pkt] = append(recvTr[tr.pkt], tr)
				if tr.at >= 0 && tr.at < n && pos[tr.at] > pos[tr.pkt] {
					rcv := 1 - x.pkts[tr.pkt].d
					for j := pos[tr.pkt] + 1; j < pos[tr.at]; j++ {
						if x.pkts[seq[j]].d == rcv {
							deliverAt[tr.pkt] = tr.at
							break
						}
					}
				}
			}
		}
	}
	late := map[int][]int{} // step -> packets delivered there late
	for k := range deliverAt {
		if deliverAt[k] != k {
			late[deliverAt[k]] = append(late[deliverAt[k]], k)
		}
	}
	cur := [2]tcp.State{c.ep[0].initial, c.ep[1].initial}
	state := func(d int, tr transition, step uint64, at time.Time) {
		recs = append(recs, trace.Record{T: at.Sub(first), Step: step, Host: hosts[d], Conn: tuples[d],
			Kind: trace.KindState, HasState: true, State: tr.to, From: tr.from, To: tr.to, Cause: tr.cause.String()})
		cur[d] = tr.to
	}
	arrive := func(k int, step uint64, at time.Time) {
		p := &x.pkts[k]
		r := 1 - p.d
		recs = append(recs, trace.Record{T: at.Sub(first), Step: step, Host: hosts[r], Conn: tuples[r],
			Kind: trace.KindSegmentIn, HasState: true, State: cur[r], Pkt: uint64(k + 1), HasSeg: true, Seg: p.seg, Opts: p.opts})
		for _, tr := range recvTr[k] {
			state(r, tr, step, at)
		}
	}
	for i, k := range seq {
		p := &x.pkts[k]
		step := uint64(i + 1)
		for _, j := range late[k] {
			arrive(j, step, p.t)
		}
		for _, tr := range sendTr[k] {
			state(p.d, tr, step, p.t)
		}
		out := trace.Record{T: p.t.Sub(first), Step: step, Host: hosts[p.d], Conn: tuples[p.d],
			Kind: trace.KindSegmentOut, HasState: true, State: cur[p.d], Pkt: uint64(k + 1), HasSeg: true,
			Seg: p.seg, Opts: p.opts, Retransmit: p.retrans}
		if p.retrans {
			out.Reason = "retransmission"
		}
		recs = append(recs, out)
		switch {
		case lost[k]:
			recs = append(recs, trace.Record{T: p.t.Sub(first), Step: step, Host: hosts[p.d], Conn: tuples[p.d],
				Kind: trace.KindLost, Pkt: uint64(k + 1), HasSeg: true, Seg: p.seg,
				Link: hosts[p.d] + "->" + hosts[1-p.d]})
		case deliverAt[k] == k:
			arrive(k, step, p.t)
		}
	}
	idx := make([]int, len(timers))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return timers[idx[a]].t.Before(timers[idx[b]].t) })
	step := uint64(n + 1)
	for _, i := range idx {
		tr, d := timers[i], timerSide[i]
		recs = append(recs, trace.Record{T: tr.t.Sub(first), Step: step, Host: hosts[d], Conn: tuples[d],
			Kind: trace.KindTimerFired, HasState: true, State: cur[d], Timer: "2MSL"})
		state(d, tr, step, tr.t)
		step++
	}
	return recs
}
