// Package tracktest generates realistic, deterministic TCP captures for
// benchmarking and testing the passive tracker (track): many connections
// with handshakes, request/response data, closes from either side, RST
// aborts, refused connections, retransmitted SYNs and data, connections
// left open and connections picked up mid-stream, over IPv4 and IPv6.
// The same seed always gives the same bytes.
//
// The capture is classic pcap (microsecond timestamps, Ethernet link type)
// with a snap length, as operators take headers-only captures of busy
// links: the IP length fields keep the payload sizes while the payload
// bytes themselves are cut. Every 4-tuple is used by one connection only,
// so that any tool that groups packets by 4-tuple (tshark's conv,tcp, the
// tracker) counts Stats.Conns connections.
package tracktest

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// Config says what to generate. Zero fields take the defaults noted.
type Config struct {
	// Seed selects the capture; the same seed gives the same bytes.
	Seed uint64
	// Packets is how many packets to write at least (default 10000): new
	// connections start until this many packets are planned, and those
	// already started run to their end.
	Packets int
	// Rate is the mean number of new connections per second of capture
	// time (default 2000).
	Rate float64
	// IPv6 is the share of connections over IPv6 (default 0.1).
	IPv6 float64
	// SnapLen is the pcap snap length (default 128): the bytes of each
	// frame written.
	SnapLen int
	// Start is the first connection's start (default 2024-01-01 UTC).
	Start time.Time
}

// Stats describes what Write wrote.
type Stats struct {
	// Packets and Conns are the packets and connections (distinct
	// 4-tuples) written; IPv6 counts the connections over IPv6.
	Packets, Conns, IPv6 int
	// Refused, Aborted, LeftOpen and MidStream count the connections of
	// those kinds; Retransmissions the retransmitted segments.
	Refused, Aborted, LeftOpen, MidStream, Retransmissions int
	// Bytes is the size of the file written.
	Bytes int64
	// First and Last are the first and last packets' timestamps.
	First, Last time.Time
}

// pkt is one planned segment.
type pkt struct {
	t        int64 // nanoseconds since Config.Start
	c2s      bool
	flags    header.TCPFlags
	seq, ack seqnum.Value
	n        int
	syn      bool // carries the SYN options
}

// conn is one planned connection: its tuple and its packets in time
// order, of which next is the first not yet written.
type conn struct {
	client, server netip.AddrPort
	pkts           []pkt
	next           int
}

type queue []*conn

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].pkts[q[i].next].t < q[j].pkts[q[j].next].t }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(*conn)) }
func (q *queue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

const (
	ethLen   = 14
	mss      = 1448
	linkEth  = 1
	pcapMagi = 0xa1b2c3d4
)

// Write writes a capture to w as cfg says and returns what it wrote.
func Write(w io.Writer, cfg Config) (Stats, error) {
	if cfg.Packets <= 0 {
		cfg.Packets = 10000
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 2000
	}
	if cfg.IPv6 < 0 || cfg.IPv6 > 1 {
		return Stats{}, errors.New("tracktest: IPv6 share must be in [0, 1]")
	}
	if cfg.IPv6 == 0 {
		cfg.IPv6 = 0.1
	}
	if cfg.SnapLen <= 0 {
		cfg.SnapLen = 128
	}
	if cfg.SnapLen < ethLen+60 {
		return Stats{}, errors.New("tracktest: snap length below the headers' size")
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		bw: bufio.NewWriterSize(w, 1<<20), buf: make([]byte, 2048), zero: make([]byte, mss)}
	var fh [24]byte
	binary.LittleEndian.PutUint32(fh[0:], pcapMagi)
	binary.LittleEndian.PutUint16(fh[4:], 2)
	binary.LittleEndian.PutUint16(fh[6:], 4)
	binary.LittleEndian.PutUint32(fh[16:], uint32(cfg.SnapLen))
	binary.LittleEndian.PutUint32(fh[20:], linkEth)
	g.bw.Write(fh[:])
	g.st.Bytes = 24

	var q queue
	planned := 0
	nextStart := int64(0)
	for {
		startMore := planned < cfg.Packets
		if startMore && (len(q) == 0 || nextStart <= q[0].pkts[q[0].next].t) {
			c := g.plan(nextStart)
			planned += len(c.pkts)
			heap.Push(&q, c)
			nextStart += int64(g.rng.ExpFloat64() / cfg.Rate * 1e9)
			continue
		}
		if len(q) == 0 {
			break
		}
		c := q[0]
		if err := g.write(c, &c.pkts[c.next]); err != nil {
			return g.st, err
		}
		c.next++
		if c.next == len(c.pkts) {
			heap.Pop(&q)
		} else {
			heap.Fix(&q, 0)
		}
	}
	return g.st, g.bw.Flush()
}

type gen struct {
	cfg  Config
	rng  *rand.Rand
	bw   *bufio.Writer
	buf  []byte
	zero []byte
	st   Stats
	n    int // connections planned
}

// tuple returns connection i's endpoints: each connection has its own
// client address, so no 4-tuple is ever reused.
func (g *gen) tuple(i int, v6 bool) (netip.AddrPort, netip.AddrPort) {
	ports := [...]uint16{80, 443, 8080, 5432, 6379}
	sport := ports[g.rng.IntN(len(ports))]
	cport := uint16(32768 + g.rng.IntN(28232))
	srv := byte(1 + g.rng.IntN(40))
	if v6 {
		var c, s [16]byte
		copy(c[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1})
		binary.BigEndian.PutUint32(c[12:], uint32(i))
		copy(s[:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 2})
		s[15] = srv
		return netip.AddrPortFrom(netip.AddrFrom16(c), cport), netip.AddrPortFrom(netip.AddrFrom16(s), sport)
	}
	c := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	if i >= 1<<24 {
		c = netip.AddrFrom4([4]byte{100, 64 + byte(i>>24&63), byte(i >> 8), byte(i)}) // past 16M: another block
	}
	return netip.AddrPortFrom(c, cport), netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, srv}), sport)
}

// plan draws one connection starting at t0 (nanoseconds).
func (g *gen) plan(t0 int64) *conn {
	r := g.rng
	v6 := r.Float64() < g.cfg.IPv6
	cl, sv := g.tuple(g.n, v6)
	g.n++
	g.st.Conns++
	if v6 {
		g.st.IPv6++
	}
	c := &conn{client: cl, server: sv}
	rtt := int64(200e3 + r.ExpFloat64()*20e6) // 0.2 ms plus a mean of 20 ms
	t := t0
	cs, ss := seqnum.Value(r.Uint32()), seqnum.Value(r.Uint32()) // next sequence numbers
	add := func(dt int64, c2s bool, f header.TCPFlags, n int) {
		t += dt
		p := pkt{t: t, c2s: c2s, flags: f, n: n}
		if c2s {
			p.seq, p.ack = cs, ss
		} else {
			p.seq, p.ack = ss, cs
		}
		if !f.Has(header.ACK) {
			p.ack = 0
		}
		c.pkts = append(c.pkts, p)
	}
	adv := func(c2s bool, n int) {
		if c2s {
			cs = cs.Add(seqnum.Size(n))
		} else {
			ss = ss.Add(seqnum.Size(n))
		}
	}
	kind := r.Float64()
	midStream := kind < 0.02
	if midStream {
		g.st.MidStream++
	} else {
		// The handshake; 3% of SYNs are retransmitted after a second.
		add(0, true, header.SYN, 0)
		c.pkts[0].syn = true
		if r.Float64() < 0.03 {
			add(1e9, true, header.SYN, 0)
			c.pkts[1].syn = true
			g.st.Retransmissions++
		}
		adv(true, 1)
		if kind < 0.07 {
			// Refused: no listener.
			add(rtt/2, false, header.RST|header.ACK, 0)
			c.pkts[len(c.pkts)-1].seq = 0
			g.st.Refused++
			return c
		}
		add(rtt/2, false, header.SYN|header.ACK, 0)
		c.pkts[len(c.pkts)-1].syn = true
		adv(false, 1)
		add(rtt/2, true, header.ACK, 0)
	}
	// Requests and responses.
	for range 1 + r.IntN(4) {
		req := 100 + r.IntN(900)
		add(int64(r.ExpFloat64()*5e6), true, header.PSH|header.ACK, req)
		adv(true, req)
		resp := r.IntN(12) * mss
		resp += r.IntN(mss)
		first := true
		for resp > 0 {
			n := min(resp, mss)
			dt := int64(20e3)
			if first {
				dt = rtt / 2
			}
			first = false
			add(dt, false, header.ACK, n)
			if r.Float64() < 0.01 {
				// Retransmitted after a timeout, as if the first copy
				// was lost after the capture point.
				add(rtt+200e6, false, header.ACK, n)
				g.st.Retransmissions++
			}
			adv(false, n)
			resp -= n
			if resp > 0 && r.IntN(2) == 0 {
				add(rtt/2, true, header.ACK, 0)
			}
		}
		add(rtt/2, true, header.ACK, 0)
	}
	switch k := r.Float64(); {
	case k < 0.10:
		// Left open: an idle keep-alive connection.
		g.st.LeftOpen++
	case k < 0.15:
		// Aborted by an RST from either side.
		c2s := r.IntN(2) == 0
		add(int64(r.ExpFloat64()*1e8), c2s, header.RST|header.ACK, 0)
		g.st.Aborted++
	default:
		// Orderly close, the client first in 60% of connections.
		c2s := r.Float64() < 0.6
		add(int64(r.ExpFloat64()*5e7), c2s, header.FIN|header.ACK, 0)
		adv(c2s, 1)
		if r.IntN(3) == 0 {
			add(rtt/2, !c2s, header.ACK, 0)
			add(int64(r.ExpFloat64()*1e7), !c2s, header.FIN|header.ACK, 0)
		} else {
			add(rtt/2, !c2s, header.FIN|header.ACK, 0)
		}
		adv(!c2s, 1)
		add(rtt/2, c2s, header.ACK, 0)
	}
	return c
}

// write writes one packet record.
func (g *gen) write(c *conn, p *pkt) error {
	src, dst := c.client, c.server
	if !p.c2s {
		src, dst = dst, src
	}
	var opts *header.TCPOptions
	if p.syn {
		opts = &header.TCPOptions{MSS: mss, HasMSS: true, WindowScale: 7, HasWindowScale: true, SACKPermitted: true}
	}
	b := g.buf
	// Ethernet: destination and source MACs, then the EtherType.
	copy(b, []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2})
	et := uint16(0x0800)
	if src.Addr().Is6() {
		et = 0x86dd
	}
	binary.BigEndian.PutUint16(b[12:], et)
	n, err := header.BuildPacket(b[ethLen:], src.Addr(), dst.Addr(), 64,
		&header.TCPFields{SrcPort: src.Port(), DstPort: dst.Port(), Seq: p.seq, Ack: p.ack, Flags: p.flags, Window: 502},
		opts, g.zero[:p.n])
	if err != nil {
		return err
	}
	wire := ethLen + n
	capLen := min(wire, g.cfg.SnapLen)
	ts := g.cfg.Start.Add(time.Duration(p.t))
	var rh [16]byte
	binary.LittleEndian.PutUint32(rh[0:], uint32(ts.Unix()))
	binary.LittleEndian.PutUint32(rh[4:], uint32(ts.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(rh[8:], uint32(capLen))
	binary.LittleEndian.PutUint32(rh[12:], uint32(wire))
	g.bw.Write(rh[:])
	if _, err := g.bw.Write(b[:capLen]); err != nil {
		return err
	}
	g.st.Bytes += int64(16 + capLen)
	if g.st.Packets == 0 {
		g.st.First = ts.Truncate(time.Microsecond)
	}
	g.st.Last = ts.Truncate(time.Microsecond)
	g.st.Packets++
	return nil
}
