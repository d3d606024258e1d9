package tcp

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// Tests of what RFC 9293 leaves to other documents: options (RFC 7323,
// RFC 2018), RTT estimation (RFC 6298), reassembly, delayed ACKs, Nagle,
// congestion control and loss recovery (RFC 5681, RFC 6582, RFC 6675),
// keep-alive (RFC 1122).

func newPairAs(t *testing.T, cfg Config) *pair {
	k := &clock{now: t0}
	return &pair{
		k: k,
		a: newEndAs(t, "A", k, sockA, sockB, cfg),
		b: newEndAs(t, "B", k, sockB, sockA, cfg),
	}
}

// handshake opens the pair (A ISS 100, B ISS 300) and returns the three
// segments, delivering each.
func (p *pair) handshake() (syn, synack, ack Segment) {
	p.b.c.Listen(p.k.now, 300)
	p.a.c.Connect(p.k.now, 100)
	syn = p.a.take()[0]
	p.b.in(syn)
	synack = p.b.take()[0]
	p.a.in(synack)
	ack = p.a.take()[0]
	p.b.in(ack)
	if p.a.c.State() != Established || p.b.c.State() != Established {
		p.a.t.Fatalf("handshake failed: %v %v", p.a.c.State(), p.b.c.State())
	}
	return
}

// TestOptionsNegotiated: each SYN offers MSS, window scale, SACK and
// timestamps; each option is used only when both offer it (RFC 7323 §1.3,
// RFC 2018 §2).
func TestOptionsNegotiated(t *testing.T) {
	p := newPairAs(t, Config{ReceiveBuffer: 1 << 20})
	syn, synack, ack := p.handshake()
	for _, s := range []Segment{syn, synack} {
		o := s.Options
		if !o.HasMSS || o.MSS != DefaultMSS || !o.HasWindowScale || o.WindowScale != 5 || !o.SACKPermitted || !o.HasTimestamps {
			t.Fatalf("%v offers %+v; want MSS 1460, WS 5 (1 MiB), SACK, TS", s.Flags, o)
		}
	}
	// The SYN,ACK echoes the SYN's timestamp; the ACK echoes the SYN,ACK's.
	if synack.Options.TSEcr != syn.Options.TSVal || ack.Options.TSEcr != synack.Options.TSVal {
		t.Fatalf("timestamps not echoed: syn %d, synack %d/%d, ack %d", syn.Options.TSVal, synack.Options.TSVal, synack.Options.TSEcr, ack.Options.TSEcr)
	}
	// The SYN's window is never scaled (RFC 7323 §2.2); later ones are.
	if syn.Window != 65535 || ack.Window != uint16((1<<20)>>5) {
		t.Fatalf("windows: SYN %d, ACK %d (want 65535 and %d)", syn.Window, ack.Window, (1<<20)>>5)
	}
	// A knows B's window from the SYN,ACK, unscaled; B knows A's, scaled.
	if st := p.a.c.Status(); st.SndWnd != 65535 || st.SndMSS != DefaultMSS-tsOptionLen {
		t.Fatalf("A's view: SND.WND %d, MSS %d; want 65535 and 1448", st.SndWnd, st.SndMSS)
	}
	if st := p.b.c.Status(); st.SndWnd != 1<<20 {
		t.Fatalf("B's view: SND.WND %d, want 1 MiB", st.SndWnd)
	}
}

// TestOptionsOnlyWhenBothOffer: a peer that offers nothing gets a SYN,ACK
// that offers nothing but the MSS, and windows are not scaled.
func TestOptionsOnlyWhenBothOffer(t *testing.T) {
	k := &clock{now: t0}
	b := newEndAs(t, "B", k, sockB, sockA, Config{ReceiveBuffer: 1 << 20})
	b.c.Listen(k.now, 300)
	b.in(S("SYN", 100, 0, 65535, ""))
	synack := b.take()[0]
	o := synack.Options
	if !o.HasMSS || o.HasWindowScale || o.SACKPermitted || o.HasTimestamps {
		t.Fatalf("SYN,ACK to a plain SYN offers %+v", o)
	}
	b.in(S("ACK", 101, 301, 1000, ""))
	if st := b.c.Status(); st.SndWnd != 1000 || st.SndMSS != DefaultSendMSS {
		t.Fatalf("unscaled window %d and default MSS %d expected", st.SndWnd, st.SndMSS)
	}
	b.c.Write(k.now, make([]byte, 3000))
	for _, s := range b.take() {
		if len(s.Payload) > DefaultSendMSS || s.Options.HasTimestamps || s.Window != 65535 {
			t.Fatalf("segment %v: %d bytes, options %+v", s.Info(), len(s.Payload), s.Options)
		}
	}
}

// TestPAWS: a segment whose timestamp is older than TS.Recent is dropped
// and answered with an ACK (RFC 7323 §5.3 R1).
func TestPAWS(t *testing.T) {
	p := newPairAs(t, Config{AckDelay: -1})
	_, synack, _ := p.handshake()
	tsB := synack.Options.TSVal
	seg := S("ACK", 301, 101, 1000, "new")
	seg.Options.HasTimestamps, seg.Options.TSVal = true, tsB+10
	p.a.in(seg)
	if p.a.c.Readable() != 3 {
		t.Fatal("a fresh segment was not taken")
	}
	p.a.take()
	old := S("ACK", 304, 101, 1000, "old")
	old.Options.HasTimestamps, old.Options.TSVal = true, tsB+5
	p.a.in(old)
	if p.a.c.Readable() != 3 {
		t.Fatal("an old-timestamp segment was delivered")
	}
	acks := p.a.take()
	if len(acks) != 1 || acks[0].Ack != 304 {
		t.Fatalf("PAWS drop answered with %v", segs(acks))
	}
	if ev := p.a.events[len(p.a.events)-2]; ev.Type != EventDrop || ev.Reason != ReasonPAWS {
		t.Fatalf("drop reason %v", ev.Reason)
	}
}

// TestRTTEstimation: SRTT, RTTVAR and RTO follow RFC 6298 §2 from the
// samples, with the 200 ms floor (§2.4).
func TestRTTEstimation(t *testing.T) {
	k := &clock{now: t0}
	a := newEndAs(t, "A", k, sockA, sockB, Config{NoTimestamps: true, NoDelay: true})
	a.c.Connect(k.now, 100)
	a.take()
	k.advance(100 * time.Millisecond)
	a.in(S("SYN,ACK", 300, 101, 65535, ""))
	a.take()
	st := a.c.Status()
	// First sample R = 100 ms: SRTT = 100, RTTVAR = 50, RTO = 100+4*50 = 300 ms.
	if a.c.srtt != 100*time.Millisecond || a.c.rttvar != 50*time.Millisecond || st.RTO != 300*time.Millisecond {
		t.Fatalf("after R=100ms: srtt %v rttvar %v rto %v", a.c.srtt, a.c.rttvar, st.RTO)
	}
	a.c.Write(k.now, []byte("x"))
	a.take()
	k.advance(20 * time.Millisecond)
	a.in(S("ACK", 301, 102, 65535, ""))
	// R = 20 ms: RTTVAR = 3/4*50 + 1/4*80 = 57.5; SRTT = 7/8*100 + 1/8*20 = 90;
	// RTO = 90 + 230 = 320 ms.
	if a.c.srtt != 90*time.Millisecond || a.c.rttvar != 57500*time.Microsecond || a.c.rto != 320*time.Millisecond {
		t.Fatalf("after R=20ms: srtt %v rttvar %v rto %v", a.c.srtt, a.c.rttvar, a.c.rto)
	}
	// Karn: a retransmitted segment gives no sample.
	a.c.Write(k.now, []byte("y"))
	a.take()
	k.now = a.c.Deadline()
	a.fire()
	a.take()
	k.advance(5 * time.Second)
	a.in(S("ACK", 301, 103, 65535, ""))
	if a.c.srtt != 90*time.Millisecond {
		t.Fatalf("a retransmission was sampled: srtt %v", a.c.srtt)
	}
	if a.c.rto != 640*time.Millisecond {
		t.Fatalf("the backed-off RTO %v should stand until a new sample", a.c.rto)
	}
}

// TestReassembly: out-of-order segments wait, each draws an immediate ACK
// with SACK blocks for what is held (RFC 2018 §4, the latest first), and
// the segment that fills the hole delivers everything. Duplicates and
// overlaps change nothing but draw a D-SACK block for the part that came
// twice (RFC 2883 §4), once.
func TestReassembly(t *testing.T) {
	p := newPairAs(t, Config{AckDelay: -1, NoTimestamps: true})
	p.handshake()
	a := p.a
	a.in(S("ACK", 311, 101, 1000, "KLMNO")) // [311,316)
	a.in(S("ACK", 321, 101, 1000, "UVW"))   // [321,324)
	a.in(S("ACK", 313, 101, 1000, "MNOPQ")) // overlaps, extends to 318
	acks := a.take()
	if len(acks) != 3 {
		t.Fatalf("want an ACK per out-of-order segment, got %s", segs(acks))
	}
	last := acks[2].Options
	// RFC 2883 §4.1.3: the D-SACK block for [313,316), held already, then
	// the block that holds it, then the others.
	want := []header.SACKBlock{{Left: 313, Right: 316}, {Left: 311, Right: 318}, {Left: 321, Right: 324}}
	if last.NumSACK != 3 || last.SACKBlocks[0] != want[0] || last.SACKBlocks[1] != want[1] || last.SACKBlocks[2] != want[2] || acks[2].Ack != 301 {
		t.Fatalf("ACK %d with SACK %v, want 301 with %v", acks[2].Ack, last.SACKBlocks[:last.NumSACK], want)
	}
	if a.c.Readable() != 0 {
		t.Fatal("data past a hole is readable")
	}
	a.in(S("ACK", 301, 101, 1000, "ABCDEFGHIJ")) // fills [301,311)
	acks = a.take()
	if len(acks) != 1 || acks[0].Ack != 318 || acks[0].Options.NumSACK != 1 {
		t.Fatalf("after the fill: %s %+v", segs(acks), acks[0].Options)
	}
	a.in(S("ACK", 318, 101, 1000, "RST"))
	a.take()
	a.in(S("ACK", 310, 101, 1000, "JK")) // old: a duplicate
	acks = a.take()
	if len(acks) != 1 || acks[0].Ack != 324 || acks[0].Options.NumSACK != 1 ||
		acks[0].Options.SACKBlocks[0] != (header.SACKBlock{Left: 310, Right: 312}) {
		t.Fatalf("the old duplicate drew %s %+v, want ACK 324 with D-SACK [310,312)", segs(acks), acks[0].Options)
	}
	a.in(S("ACK", 309, 101, 1000, "IJ")) // straddles nothing new either
	a.c.Write(p.k.now, []byte("!"))
	acks = a.take()
	if len(acks) != 2 || acks[1].Options.NumSACK != 0 {
		t.Fatalf("the D-SACK was sent again: %s %+v", segs(acks), acks[1].Options)
	}
	buf := make([]byte, 64)
	n, _ := a.c.Read(p.k.now, buf)
	if got := string(buf[:n]); got != "ABCDEFGHIJKLMNOPQRSTUVW" {
		t.Fatalf("read %q", got)
	}
}

// TestDelayedAck: one segment's ACK waits for AckDelay; a second full
// segment is acknowledged at once (RFC 5681 §4.2); data the reply carries
// takes the ACK along.
func TestDelayedAck(t *testing.T) {
	p := newPairAs(t, Config{NoTimestamps: true})
	p.handshake()
	b := p.b
	full := string(make([]byte, DefaultMSS))
	b.in(S("ACK", 101, 301, 1000, full))
	b.expectNone()
	if d := b.c.Deadline(); d != p.k.now.Add(DefaultAckDelay) {
		t.Fatalf("delayed-ACK timer at %v", d.Sub(p.k.now))
	}
	b.in(S("ACK", 101+DefaultMSS, 301, 1000, full))
	if got := b.take(); len(got) != 1 || got[0].Ack != 101+2*DefaultMSS {
		t.Fatalf("second full segment: %s", segs(got))
	}
	b.in(S("ACK", 101+2*DefaultMSS, 301, 1000, "tiny"))
	b.expectNone()
	p.k.advance(10 * time.Millisecond)
	b.c.Write(p.k.now, []byte("reply"))
	got := b.take()
	if len(got) != 1 || string(got[0].Payload) != "reply" || got[0].Ack != 101+2*DefaultMSS+4 {
		t.Fatalf("the reply should carry the ACK: %s", segs(got))
	}
	p.k.advance(100 * time.Millisecond)
	b.fire()
	b.expectNone()
	// And with nothing to carry it, the timer sends it.
	b.in(S("ACK", 105+2*DefaultMSS, 306, 1000, "more"))
	p.k.advance(DefaultAckDelay)
	b.fire()
	if got := b.take(); len(got) != 1 || got[0].Ack != 109+2*DefaultMSS {
		t.Fatalf("delayed ACK: %s", segs(got))
	}
}

// TestNagle: while data is unacknowledged a short segment waits until the
// ACK comes or a full segment can go (RFC 9293 §3.7.4); NoDelay sends at
// once.
func TestNagle(t *testing.T) {
	for _, noDelay := range []bool{false, true} {
		t.Run(fmt.Sprint("NoDelay=", noDelay), func(t *testing.T) {
			p := newPairAs(t, Config{NoTimestamps: true, NoDelay: noDelay, AckDelay: -1})
			p.handshake()
			a := p.a
			a.c.Write(p.k.now, []byte("a"))
			a.c.Write(p.k.now, []byte("b"))
			a.c.Write(p.k.now, []byte("c"))
			got := a.take()
			if !noDelay {
				if len(got) != 1 || string(got[0].Payload) != "a" {
					t.Fatalf("with Nagle: %s", segs(got))
				}
				a.in(S("ACK", 301, 102, 1000, ""))
				if got := a.take(); len(got) != 1 || string(got[0].Payload) != "bc" {
					t.Fatalf("after the ACK: %s", segs(got))
				}
			} else if len(got) != 3 {
				t.Fatalf("without Nagle each write goes: %s", segs(got))
			}
		})
	}
}

// TestSlowStart: the first flight is the initial window of ten segments
// (RFC 6928); each ACK in slow start opens room for more (RFC 5681 §3.1).
func TestSlowStart(t *testing.T) {
	p := newPairAs(t, Config{NoTimestamps: true, AckDelay: -1, NoDelay: true, MSS: 100, CongestionControl: "newreno"})
	p.handshake()
	a := p.a
	a.c.Write(p.k.now, make([]byte, 5000))
	if got := a.take(); len(got) != 10 {
		t.Fatalf("first flight: %d segments, want 10", len(got))
	}
	a.in(S("ACK", 301, 201, 65535, "")) // one segment acknowledged
	if got := a.take(); len(got) != 2 {
		t.Fatalf("after one ACK in slow start: %d segments, want 2", len(got))
	}
}

// lossPair returns a pair in which A has sent n segments of MSS 100 from
// seq 101 (B sees none of them) with the given options.
func lossPair(t *testing.T, cfg Config, n int) (*pair, []Segment) {
	cfg.NoTimestamps, cfg.AckDelay, cfg.NoDelay, cfg.MSS = true, -1, true, 100
	p := newPairAs(t, cfg)
	p.handshake()
	// B's window, scaled, as its first ACK would bring it: duplicate ACKs
	// must repeat the window they follow (RFC 5681 §2).
	p.a.in(Segment{Seq: 301, Ack: 101, Flags: header.ACK, Window: uint16(p.b.c.rcvWindow() >> p.b.c.rcvShift)})
	p.a.c.Write(p.k.now, make([]byte, n*100))
	sent := p.a.take()
	if len(sent) != n {
		t.Fatalf("sent %d segments, want %d", len(sent), n)
	}
	return p, sent
}

// TestFastRetransmitNewReno: without SACK, three duplicate ACKs resend the
// missing segment at once, before any timeout (RFC 5681 §3.2); a partial
// ACK resends the next hole (RFC 6582 §3.2 step 5); a full ACK ends
// recovery with the window halved.
func TestFastRetransmitNewReno(t *testing.T) {
	p, sent := lossPair(t, Config{NoSACK: true, CongestionControl: "newreno"}, 8)
	a, b := p.a, p.b
	// Segments 0 and 3 are lost.
	for _, i := range []int{1, 2, 4, 5, 6, 7} {
		b.in(sent[i])
	}
	dups := b.take()
	if len(dups) != 6 {
		t.Fatalf("B sent %d dup ACKs", len(dups))
	}
	a.in(dups[0])
	a.in(dups[1])
	a.expectNone()
	a.in(dups[2])
	rtx := a.take()
	if len(rtx) < 1 || rtx[0].Seq != 101 || len(rtx[0].Payload) != 100 {
		t.Fatalf("third dup ACK: %s", segs(rtx))
	}
	if ev := lastOut(a); !ev.Retransmit {
		t.Fatal("not marked as a retransmission")
	}
	cwnd := a.c.cc.CWnd()
	if cwnd != 400 { // ssthresh = FlightSize/2 = 800/2
		t.Fatalf("cwnd in recovery %d, want 400", cwnd)
	}
	b.in(rtx[0])
	partial := b.take()
	if len(partial) != 1 || partial[0].Ack != 401 {
		t.Fatalf("B's ACK after the resend: %s", segs(partial))
	}
	a.in(partial[0])
	if got := a.take(); len(got) < 1 || got[0].Seq != 401 {
		t.Fatalf("partial ACK should resend the next hole: %s", segs(got))
	}
	b.in(S("ACK", 401, 301, 65535, string(make([]byte, 100))))
	full := b.take()
	if full[len(full)-1].Ack != 901 {
		t.Fatalf("B did not reassemble: %s", segs(full))
	}
	a.in(full[len(full)-1])
	if a.c.inRecovery || a.c.SendQueued() != 0 {
		t.Fatalf("recovery did not end: %v, %d queued", a.c.inRecovery, a.c.SendQueued())
	}
}

// TestFastRetransmitSACK: with SACK, the duplicate ACKs' blocks show which
// segments are missing; recovery resends exactly those (RFC 6675).
func TestFastRetransmitSACK(t *testing.T) {
	p, sent := lossPair(t, Config{}, 10)
	a, b := p.a, p.b
	// Segments 0 and 4 are lost.
	for i, s := range sent {
		if i != 0 && i != 4 {
			b.in(s)
		}
	}
	dups := b.take()
	last := dups[len(dups)-1].Options
	if last.NumSACK != 2 {
		t.Fatalf("B's last dup ACK SACKs %v", last.SACKBlocks[:last.NumSACK])
	}
	var rtx []Segment
	for _, d := range dups {
		a.in(d)
		rtx = append(rtx, a.take()...)
	}
	var resent []seqnum.Value
	for _, s := range rtx {
		if s.Seq.LessThan(1101) {
			resent = append(resent, s.Seq)
		}
	}
	if fmt.Sprint(resent) != "[101 501]" {
		t.Fatalf("resent %v, want exactly the holes [101 501]", resent)
	}
	for _, s := range rtx {
		b.in(s)
	}
	acks := b.take()
	if acks[len(acks)-1].Ack.LessThan(1101) {
		t.Fatalf("B still misses data: %s", segs(acks))
	}
}

// TestRTOKeepsSACK: a timeout restarts from one segment and resends from
// SND.UNA, but not what the peer has SACKed (RFC 6675 §5.1; Linux keeps
// its SACK marks too). RACK is off: with no time passing it would resend
// the holes before the timeout (see rack_test.go).
func TestRTOKeepsSACK(t *testing.T) {
	p, sent := lossPair(t, Config{NoRACK: true}, 4)
	a, b := p.a, p.b
	b.in(sent[2]) // [301,401) arrives; B SACKs it
	a.in(b.take()[0])
	p.k.now = a.c.Deadline()
	a.fire()
	got := a.take()
	if len(got) != 1 || got[0].Seq != 101 || a.c.cc.CWnd() != 100 {
		t.Fatalf("RTO: %s, cwnd %d", segs(got), a.c.cc.CWnd())
	}
	if in, _ := a.c.sacked.contains(301); !in {
		t.Fatal("the SACK scoreboard was dropped at the timeout")
	}
	b.in(got[0])
	a.in(b.take()[0]) // ACK 201, SACK [301,401): cwnd two segments
	got = a.take()
	if len(got) != 2 || got[0].Seq != 201 || got[1].Seq != 401 {
		t.Fatalf("after the timeout, sent %s; want 201 and 401, skipping the SACKed 301", segs(got))
	}
}

// TestRTORenegedSACK: if the first unacknowledged byte shows as SACKed,
// the peer has reneged on its SACKs, and the timeout sets them aside
// (RFC 2018 §8) and resends it.
func TestRTORenegedSACK(t *testing.T) {
	p, _ := lossPair(t, Config{NoRACK: true}, 4)
	a := p.a
	a.in(withSACK(Segment{Seq: 301, Ack: 101, Flags: header.ACK, Window: uint16(p.b.c.rcvWindow() >> p.b.c.rcvShift)},
		header.SACKBlock{Left: 101, Right: 201}))
	p.k.now = a.c.Deadline()
	a.fire()
	got := a.take()
	if len(got) != 1 || got[0].Seq != 101 {
		t.Fatalf("RTO after reneging: %s, want 101 resent", segs(got))
	}
	if !a.c.sacked.empty() {
		t.Fatal("a reneged scoreboard kept across the timeout")
	}
}

// TestKeepAlive: an idle connection is probed after KeepAliveIdle; an
// answer keeps it; KeepAliveCount unanswered probes end it.
func TestKeepAlive(t *testing.T) {
	cfg := Config{NoTimestamps: true, KeepAlive: true, KeepAliveIdle: 10 * time.Second, KeepAliveInterval: time.Second, KeepAliveCount: 2}
	p := newPairAs(t, cfg)
	p.handshake()
	a := p.a
	p.k.advance(10 * time.Second)
	a.fire()
	probe := a.take()
	if len(probe) != 1 || probe[0].Seq != 100 || len(probe[0].Payload) != 0 {
		t.Fatalf("keep-alive probe: %s", segs(probe))
	}
	p.b.in(probe[0])
	a.in(p.b.take()[0]) // the answer
	p.k.advance(time.Second)
	a.fire()
	a.expectNone() // answered: wait a whole idle period again
	p.k.advance(9 * time.Second)
	a.fire()
	a.take()
	p.k.advance(time.Second)
	a.fire()
	a.take()
	p.k.advance(time.Second)
	a.fire()
	a.wantState(Closed)
	if !errors.Is(a.c.Err(), ErrTimeout) {
		t.Fatalf("err %v", a.c.Err())
	}
}

func lastOut(e *end) Event {
	for i := len(e.events) - 1; i >= 0; i-- {
		if e.events[i].Type == EventSegmentOut {
			return e.events[i]
		}
	}
	return Event{}
}

// TestReceiverSWS: a receiver does not offer a sliver of window: the right
// edge moves only by at least min(half the buffer, one segment)
// (RFC 9293 §3.8.6.2.2).
func TestReceiverSWS(t *testing.T) {
	p := newPair(t, Config{ReceiveBuffer: 1000, MSS: 100})
	p.handshake()
	b := p.b
	for i := 0; i < 10; i++ {
		b.in(S("ACK", uint32(101+100*i), 301, 1000, string(make([]byte, 100))))
	}
	if acks := b.take(); acks[len(acks)-1].Window != 0 {
		t.Fatalf("full buffer advertises %d", acks[len(acks)-1].Window)
	}
	buf := make([]byte, 60)
	b.c.Read(p.k.now, buf[:50])
	b.expectNone()                        // 50 bytes free: too little to announce
	b.in(S("ACK", 1100, 301, 1000, ""))   // a zero-window probe
	b.expect1(S("ACK", 301, 1101, 0, "")) // still shut
	b.c.Read(p.k.now, buf)                // 110 free
	b.expect1(S("ACK", 301, 1101, 110, ""))
}

// TestAckAtRightEdge: a peer that has sent a whole window (its last
// segment lost) sends pure ACKs whose sequence number is our right edge;
// their acknowledgment must not be lost.
func TestAckAtRightEdge(t *testing.T) {
	p := newPairAs(t, Config{NoTimestamps: true, AckDelay: -1, NoDelay: true})
	p.handshake()
	a := p.a
	a.c.Write(p.k.now, []byte("outstanding"))
	a.take()
	edge := uint32(a.c.rcvNxt) + a.c.rcvWindow()
	a.in(Segment{Seq: seqnum.Value(edge), Ack: a.c.sndNxt, Flags: header.ACK, Window: 1000})
	if a.c.sndUna != a.c.sndNxt {
		t.Fatalf("the ACK at the right edge was dropped: SND.UNA %d, SND.NXT %d", a.c.sndUna, a.c.sndNxt)
	}
}

// TestWindowNeverShrinks: with window scaling, the right edge we offer
// never moves left, whatever arrives and is read (RFC 7323 §2.4).
func TestWindowNeverShrinks(t *testing.T) {
	p := newPairAs(t, Config{NoTimestamps: true, AckDelay: -1, ReceiveBuffer: 1 << 20})
	p.handshake()
	b := p.b
	edge := func(s Segment) seqnum.Value { return s.Ack.Add(seqnum.Size(uint32(s.Window) << b.c.rcvShift)) }
	last := seqnum.Value(0)
	seq := uint32(101)
	buf := make([]byte, 3000)
	for i := range 400 {
		n := 1 + (i*7919)%1400
		b.in(S("ACK", seq, 301, 1000, string(make([]byte, n))))
		seq += uint32(n)
		if i%3 == 0 {
			b.c.Read(p.k.now, buf[:(i*31)%3000])
		}
		for _, s := range b.take() {
			if e := edge(s); last != 0 && e.LessThan(last) {
				t.Fatalf("segment %d: right edge %d moved left of %d", i, e, last)
			} else {
				last = e
			}
		}
	}
}

// TestObserverMask: a connection observed for state changes only hands
// over state events and builds no others, and counts its segments either
// way.
func TestObserverMask(t *testing.T) {
	var got []EventType
	obs := ObserverFunc(func(e *Event) { got = append(got, e.Type) })
	now, ca, cb, la, lb := loopPair(t, &Config{})
	ca.SetObserverMask(obs, MaskOf(EventState))
	ca.Write(now, []byte("hello"))
	pump(now, la, lb)
	ca.Close(now)
	settle(&now, time.Second, la, lb)
	if len(got) == 0 {
		t.Fatal("no state events seen after CLOSE")
	}
	for _, typ := range got {
		if typ != EventState {
			t.Fatalf("observer got a %v event; the mask asked for state changes only", typ)
		}
	}
	st := ca.Status()
	if st.SegsOut == 0 || st.SegsIn == 0 {
		t.Errorf("segment counters not kept: in %d out %d", st.SegsIn, st.SegsOut)
	}
	_ = cb
	got = nil
	ca.SetObserverMask(nil, AllEvents)
	cb.Close(now)
	settle(&now, time.Second, la, lb)
	if len(got) != 0 {
		t.Errorf("a nil observer still got %d events", len(got))
	}
	if !AllEvents.Has(EventCall) || MaskOf(EventState).Has(EventSegmentIn) {
		t.Error("EventMask.Has disagrees with MaskOf/AllEvents")
	}
}

// TestStatesNamed: filter names in every spelling people meet select the
// states they mean.
func TestStatesNamed(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []State
	}{
		{"SYN-RECEIVED", []State{SynReceived}},
		{"syn-recv", []State{SynReceived}},
		{"syn_recv", []State{SynReceived}},
		{"SYN_RECV", []State{SynReceived}},
		{"estab", []State{Established}},
		{"time-wait", []State{TimeWait}},
		{"FIN_WAIT", []State{FinWait1, FinWait2}},
		{"fin-wait-2", []State{FinWait2}},
		{"SYNACK", []State{SynReceived}},
		{"bucket", []State{SynReceived, TimeWait}},
		{"close", []State{Closed}},
	} {
		got, err := StatesNamed(tc.name)
		if err != nil {
			t.Errorf("StatesNamed(%q): %v", tc.name, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("StatesNamed(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got, _ := StatesNamed("connected"); len(got) != NumStates-2 {
		t.Errorf("connected selects %v", got)
	}
	if _, err := StatesNamed("half-open"); err == nil {
		t.Error("StatesNamed accepted a made-up state")
	}
}

// TestTimestampClockMonotone: handed a time earlier than one it has used
// (a runtime's batch clock), the connection still sends a TSval no lower
// than its last, so the peer's PAWS test never drops it (RFC 7323 §5.4).
func TestTimestampClockMonotone(t *testing.T) {
	now, ca, cb, la, lb := loopPair(t, &Config{AckDelay: -1, NoDelay: true})
	ca.Write(now.Add(50*time.Millisecond), []byte("later"))
	first := la.q[len(la.q)-1].Options.TSVal
	pump(now.Add(50*time.Millisecond), la, lb)
	ca.Write(now.Add(10*time.Millisecond), []byte("earlier"))
	if len(la.q) == 0 {
		t.Fatal("the second write sent nothing")
	}
	second := la.q[len(la.q)-1].Options.TSVal
	if !la.q[len(la.q)-1].Options.HasTimestamps || int32(second-first) < 0 {
		t.Fatalf("TSval went from %d back to %d", first, second)
	}
	pump(now.Add(50*time.Millisecond), la, lb)
	if got := cb.Readable(); got != len("later")+len("earlier") {
		t.Fatalf("peer took %d bytes; PAWS dropped a segment", got)
	}
}

// TestCoalescedSegmentAckedAtOnce: a segment longer than the MSS we
// announced (several joined by the receiving side's offloads) is
// acknowledged at once, as two full-sized ones would be, and does not
// raise the receiver's idea of a full-sized segment.
func TestCoalescedSegmentAckedAtOnce(t *testing.T) {
	now, _, cb, _, lb := loopPair(t, &Config{MSS: 1000})
	big := Segment{Seq: cb.Status().RcvNxt, Ack: cb.Status().SndNxt, Flags: header.ACK, Window: 1000, Payload: make([]byte, 10000)}
	lb.q = lb.q[:0]
	cb.Input(now, &big)
	if len(lb.q) != 1 || lb.q[0].Ack != big.Seq.Add(10000) {
		t.Fatalf("a 10000-byte coalesced segment got %d immediate ACKs, want 1 for all of it", len(lb.q))
	}
	lb.q = lb.q[:0]
	small := Segment{Seq: big.Seq.Add(10000), Ack: big.Ack, Flags: header.ACK, Window: 1000, Payload: make([]byte, 1000)}
	cb.Input(now, &small)
	small.Seq = small.Seq.Add(1000)
	cb.Input(now, &small)
	if len(lb.q) != 1 {
		t.Fatalf("two full-sized segments after a coalesced one drew %d ACKs, want 1", len(lb.q))
	}
}

// TestDSACKStraddling: a segment partly below RCV.NXT delivers its new
// part, and the ACK reports the old part in a D-SACK block, at once
// (RFC 2883 §4.1.1).
func TestDSACKStraddling(t *testing.T) {
	p := newPairAs(t, Config{NoTimestamps: true})
	p.handshake()
	a := p.a
	a.in(S("ACK", 301, 101, 1000, "ABCDEFGHIJ")) // [301,311)
	a.take()
	a.in(S("ACK", 306, 101, 1000, "FGHIJKLMNO")) // [306,316): [306,311) again
	acks := a.take()
	if len(acks) != 1 || acks[0].Ack != 316 || acks[0].Options.NumSACK != 1 ||
		acks[0].Options.SACKBlocks[0] != (header.SACKBlock{Left: 306, Right: 311}) {
		t.Fatalf("the straddling segment drew %s %+v, want an immediate ACK 316 with D-SACK [306,311)", segs(acks), acks)
	}
	buf := make([]byte, 32)
	if n, _ := a.c.Read(p.k.now, buf); string(buf[:n]) != "ABCDEFGHIJKLMNO" {
		t.Fatalf("read %q", buf[:n])
	}
}
