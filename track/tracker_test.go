package track

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
	"github.com/tcpstate/tcpstate/track/capture"
	"github.com/tcpstate/tcpstate/track/ipvs"
)

const (
	S  = header.SYN
	A  = header.ACK
	F  = header.FIN
	R  = header.RST
	SA = header.SYN | header.ACK
	FA = header.FIN | header.ACK
	RA = header.RST | header.ACK
	PA = header.PSH | header.ACK
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// harness feeds hand-built packets between a client and a server.
type harness struct {
	t    *testing.T
	tr   *Tracker
	now  time.Time
	c, s netip.AddrPort
	ws   bool
}

func newHarness(t *testing.T, c, s string) *harness {
	return &harness{t: t, tr: New(Config{}), now: t0,
		c: netip.MustParseAddrPort(c), s: netip.MustParseAddrPort(s)}
}

// pkt sends a packet from the client (c2s) or the server, 10 ms after the
// previous one.
func (h *harness) pkt(c2s bool, f header.TCPFlags, seq, ack uint32, n int) {
	h.now = h.now.Add(10 * time.Millisecond)
	p := &capture.Packet{T: h.now, Src: h.c, Dst: h.s, Flags: f, Seq: seqnum.Value(seq),
		Ack: seqnum.Value(ack), Window: 64000, PayloadLen: n}
	if !c2s {
		p.Src, p.Dst = h.s, h.c
	}
	if f.Has(S) && h.ws {
		p.Options.HasWindowScale, p.Options.WindowScale = true, 7
	}
	h.tr.Feed(p)
}

func (h *harness) C(f header.TCPFlags, seq, ack uint32, n int) { h.pkt(true, f, seq, ack, n) }
func (h *harness) S(f header.TCPFlags, seq, ack uint32, n int) { h.pkt(false, f, seq, ack, n) }

// view returns the only connection (or the last one) at the last packet.
func (h *harness) view() ConnView {
	h.t.Helper()
	vs := h.tr.Snapshot(h.now)
	if len(vs) == 0 {
		h.t.Fatal("no connection")
	}
	return vs[len(vs)-1]
}

func (h *harness) want(client, server tcp.State) {
	h.t.Helper()
	v := h.view()
	if v.ClientState != client || v.ServerState != server {
		h.t.Errorf("client %v server %v, want %v %v", v.ClientState, v.ServerState, client, server)
	}
}

func (h *harness) handshake() {
	h.C(S, 100, 0, 0)
	h.S(SA, 500, 101, 0)
	h.C(A, 101, 501, 0)
}

func TestHandshake(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.C(S, 100, 0, 0)
	h.want(tcp.SynSent, tcp.SynReceived)
	if v := h.view(); v.ServerProven != tcp.Listen {
		t.Errorf("server proven %v before answering, want LISTEN", v.ServerProven)
	}
	h.S(SA, 500, 101, 0)
	h.want(tcp.Established, tcp.SynReceived)
	h.C(A, 101, 501, 0)
	h.want(tcp.Established, tcp.Established)
	h.C(PA, 101, 501, 100)
	h.S(PA, 501, 201, 200)
	h.C(A, 201, 701, 0)
	v := h.view()
	if v.Bytes != [2]uint64{100, 200} || v.Packets != [2]uint64{4, 2} || v.Retrans != [2]uint64{} {
		t.Errorf("bytes %v packets %v retrans %v", v.Bytes, v.Packets, v.Retrans)
	}
	if v.ConntrackState != "ESTABLISHED" || v.IPVSState != "ESTABLISHED" || v.ZeekState != "S1" {
		t.Errorf("conntrack %q ipvs %q zeek %q", v.ConntrackState, v.IPVSState, v.ZeekState)
	}
	if v.ClientProven != tcp.Established || v.ServerProven != tcp.Established {
		t.Errorf("proven %v %v", v.ClientProven, v.ServerProven)
	}
}

// closeFirst: the closer (client or server) sends FIN, the other ACKs,
// then closes.
func TestClientActiveClose(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.want(tcp.FinWait1, tcp.CloseWait)
	h.S(A, 501, 102, 0)
	h.want(tcp.FinWait2, tcp.CloseWait)
	h.S(FA, 501, 102, 0)
	h.want(tcp.TimeWait, tcp.LastAck)
	h.C(A, 102, 502, 0)
	h.want(tcp.TimeWait, tcp.Closed)
	v := h.view()
	if v.ConntrackState != "TIME_WAIT" || v.ZeekState != "SF" || v.Ended {
		t.Errorf("conntrack %q zeek %q ended %v", v.ConntrackState, v.ZeekState, v.Ended)
	}
	// TIME-WAIT lasts 60 s from the FIN that put the client there.
	tw := v.TimeWaitSince
	if vs := h.tr.Snapshot(tw.Add(59 * time.Second)); vs[0].ClientState != tcp.TimeWait {
		t.Errorf("at 59 s: %v", vs[0].ClientState)
	}
	vs := h.tr.Snapshot(tw.Add(60 * time.Second))
	if vs[0].ClientState != tcp.Closed || !vs[0].Ended {
		t.Errorf("at 60 s: %v ended %v", vs[0].ClientState, vs[0].Ended)
	}
	// conntrack's TIME_WAIT lasts 120 s from the last ACK.
	if vs[0].ConntrackState != "TIME_WAIT" || seconds(vs[0].ConntrackExpire) != 60 {
		t.Errorf("conntrack at 60 s: %q %d", vs[0].ConntrackState, seconds(vs[0].ConntrackExpire))
	}
	if vs := h.tr.Snapshot(h.now.Add(121 * time.Second)); vs[0].ConntrackState != "" || vs[0].ConntrackExpire != 0 {
		t.Errorf("conntrack after expiry: %q %v", vs[0].ConntrackState, vs[0].ConntrackExpire)
	}
}

func TestServerActiveClose(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.S(FA, 501, 101, 0)
	h.want(tcp.CloseWait, tcp.FinWait1)
	h.C(A, 101, 502, 0)
	h.want(tcp.CloseWait, tcp.FinWait2)
	h.C(FA, 101, 502, 0)
	h.S(A, 502, 102, 0)
	h.want(tcp.Closed, tcp.TimeWait)
}

func TestHalfClose(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.S(A, 501, 102, 0)
	h.S(PA, 501, 102, 1000)
	h.C(A, 102, 1501, 0)
	h.S(PA, 1501, 102, 1000)
	h.C(A, 102, 2501, 0)
	h.want(tcp.FinWait2, tcp.CloseWait)
	if v := h.view(); v.Bytes[S2C] != 2000 || v.CloseWaitSince.IsZero() {
		t.Errorf("bytes s2c %d, close-wait since %v", v.Bytes[S2C], v.CloseWaitSince)
	}
}

// A FIN retransmitted after the peer's ACK of it was seen: that ACK was
// lost, and the FIN's sender is still in LAST-ACK.
func TestLostFinalACK(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.S(A, 501, 102, 0)
	h.S(FA, 501, 102, 0)
	h.C(A, 102, 502, 0)
	h.want(tcp.TimeWait, tcp.Closed)
	if v := h.view(); v.ServerProven != tcp.LastAck {
		t.Errorf("server proven %v, want LAST-ACK until its peer's ACK is proven", v.ServerProven)
	}
	h.now = h.now.Add(200 * time.Millisecond)
	h.S(FA, 501, 102, 0) // retransmission: the ACK was lost
	h.want(tcp.TimeWait, tcp.LastAck)
	if v := h.view(); v.Retrans[S2C] != 1 || v.Retrans[C2S] != 0 {
		t.Errorf("retrans %v, want the server's FIN once", v.Retrans)
	}
	h.C(A, 102, 502, 0)
	h.want(tcp.TimeWait, tcp.Closed)
	h.tr.Finish(h.now)
	if n := h.tr.counts[tcp.LastAck][tcp.Closed][causeOf(header.ACK)]; n != 1 || causeOf(header.ACK).String() != "rcv ACK" {
		t.Errorf("LAST-ACK -> CLOSED on %q counted %d times", causeOf(header.ACK), n)
	}
}

func TestSimultaneousOpen(t *testing.T) {
	h := newHarness(t, "10.0.0.1:5000", "10.0.0.2:6000")
	h.C(S, 100, 0, 0)
	h.S(S, 500, 0, 0)
	h.want(tcp.SynReceived, tcp.SynReceived)
	if v := h.view(); v.ClientProven != tcp.SynSent || v.ServerProven != tcp.SynSent {
		t.Errorf("proven %v %v, want both SYN-SENT (the SYNs crossed)", v.ClientProven, v.ServerProven)
	}
	h.C(SA, 100, 501, 0)
	h.S(SA, 500, 101, 0)
	h.want(tcp.Established, tcp.Established)
	if h.tr.Conns()[0].ep[1].initial != tcp.Closed {
		t.Errorf("server initial %v, want CLOSED", h.tr.Conns()[0].ep[1].initial)
	}
}

func TestSimultaneousClose(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.S(FA, 501, 101, 0) // does not ACK the client's FIN: they crossed
	h.want(tcp.Closing, tcp.Closing)
	h.C(A, 102, 502, 0)
	h.S(A, 502, 102, 0)
	h.want(tcp.TimeWait, tcp.TimeWait)
	if v := h.view(); v.ClientProven != tcp.Closing || v.ServerProven != tcp.Closing {
		t.Errorf("proven %v %v: the ACKs' arrival is not proven", v.ClientProven, v.ServerProven)
	}
	h.tr.Finish(h.now)
	if n := h.tr.counts[tcp.FinWait1][tcp.Closing][causeOf(header.FIN|header.ACK)]; n != 2 {
		t.Errorf("FIN-WAIT-1 -> CLOSING counted %d, want 2: %v", n, h.tr.TransitionCounts())
	}
	if n := h.tr.counts[tcp.Closing][tcp.TimeWait][causeOf(header.ACK)]; n != 2 {
		t.Errorf("CLOSING -> TIME-WAIT counted %d, want 2", n)
	}
}

func TestMidStream(t *testing.T) {
	h := newHarness(t, "10.0.0.1:80", "10.0.0.2:51000")
	// The first packet is the server's (port 80) data: the client is the
	// higher port.
	h.C(PA, 1000, 2000, 100)
	v := h.view()
	if v.Client.Port() != 51000 || v.Server.Port() != 80 || !v.MidStream {
		t.Fatalf("client %v server %v midstream %v", v.Client, v.Server, v.MidStream)
	}
	h.want(tcp.Established, tcp.Established)
	if v.ConntrackState != "ESTABLISHED" {
		t.Errorf("conntrack %q, want ESTABLISHED (tcp_loose)", v.ConntrackState)
	}
	h.S(A, 2000, 1100, 0)
	h.S(FA, 2000, 1100, 0) // h.S is port 51000: the client
	h.want(tcp.FinWait1, tcp.CloseWait)
}

func TestRefused(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:81")
	h.C(S, 100, 0, 0)
	h.S(RA, 0, 101, 0)
	h.want(tcp.Closed, tcp.Closed)
	v := h.view()
	if !v.Ended || v.ConntrackState != "" || v.ZeekState != "REJ" {
		t.Errorf("ended %v conntrack %q zeek %q", v.Ended, v.ConntrackState, v.ZeekState)
	}
	// The client tries again from the same port: a new connection.
	h.C(S, 9000, 0, 0)
	if n := len(h.tr.conns); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	h.want(tcp.SynSent, tcp.SynReceived)
}

func TestRSTAbort(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(PA, 101, 501, 10)
	h.S(PA, 501, 111, 10)
	h.C(RA, 111, 511, 0)
	h.want(tcp.Closed, tcp.Closed)
	v := h.view()
	if v.ConntrackState != "CLOSE" || seconds(v.ConntrackExpire) != 10 || v.HalfOpen != [2]bool{} {
		t.Errorf("conntrack %q %v half-open %v", v.ConntrackState, v.ConntrackExpire, v.HalfOpen)
	}
}

// Half-open: the server lost its state and answers data with a bare RST.
func TestHalfOpen(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.C(PA, 101, 501, 10)
	h.S(R, 501, 0, 0)
	v := h.view()
	if !v.HalfOpen[S2C] || v.ClientState != tcp.Closed {
		t.Errorf("half-open %v client %v", v.HalfOpen, v.ClientState)
	}
}

func TestSynFlood(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	for i := range 5 {
		h.c = netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(2000+i))
		h.C(S, 100, 0, 0)
		h.S(SA, 500, 101, 0)
		h.S(SA, 500, 101, 0) // retransmitted: the ACK never came
	}
	// The client sent nothing between the SYN,ACK and its retransmission:
	// it never got it (see TestUnansweredSynAck).
	for _, v := range h.tr.Snapshot(h.now) {
		if v.ServerState != tcp.SynReceived || v.ClientState != tcp.SynSent || v.Retrans[S2C] != 1 {
			t.Errorf("%v: client %v server %v retrans %v", v.Client, v.ClientState, v.ServerState, v.Retrans)
		}
	}
}

func TestIPv6(t *testing.T) {
	h := newHarness(t, "[fd00::1]:40000", "[fd00::2]:443")
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.S(FA, 501, 102, 0)
	h.C(A, 102, 502, 0)
	h.want(tcp.TimeWait, tcp.Closed)
	var b bytes.Buffer
	if err := WriteJSON(&b, h.tr.Snapshot(h.now)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["client"] != "[fd00::1]:40000" || m["server"] != "[fd00::2]:443" {
		t.Errorf("client %v server %v", m["client"], m["server"])
	}
}

// A segment overlapping what was seen is a retransmission; one filling a
// hole below the highest sequence seen (reordered before the capture
// point) is not.
func TestRetransmissionVsReordering(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(PA, 101, 501, 100)  // 101-201
	h.C(PA, 301, 501, 100)  // 301-401: a hole at 201-301
	h.C(PA, 201, 501, 100)  // fills the hole: reordering
	h.C(PA, 101, 501, 100)  // again: a retransmission
	h.C(PA, 351, 501, 100)  // partly overlapping: a retransmission
	h.C(A, 451, 501, 0)     // a pure ACK is never one
	h.S(PA, 501, 451, 1000) // the other direction
	v := h.view()
	if v.Retrans != [2]uint64{2, 0} {
		t.Errorf("retrans %v, want [2 0]", v.Retrans)
	}
	if v.Bytes[C2S] != 500 {
		t.Errorf("bytes %d", v.Bytes[C2S])
	}
}

func TestWindowScaleAndZeroWindow(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.ws = true
	h.handshake()
	h.now = h.now.Add(time.Millisecond)
	h.tr.Feed(&capture.Packet{T: h.now, Src: h.s, Dst: h.c, Flags: A, Seq: 501, Ack: 101, Window: 0})
	v := h.view()
	if v.Window[C2S] != 64000<<7 || v.ZeroWindow[S2C] != 1 || v.Window[S2C] != 0 {
		t.Errorf("window %v zero %v", v.Window, v.ZeroWindow)
	}
}

func TestTimeWaitReopen(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.S(FA, 501, 102, 0)
	h.C(A, 102, 502, 0)
	h.C(S, 50, 0, 0) // below the old connection's sequence: not a new one
	if len(h.tr.conns) != 1 {
		t.Fatalf("%d connections after an old SYN", len(h.tr.conns))
	}
	h.C(S, 100000, 0, 0)
	if len(h.tr.conns) != 2 {
		t.Fatalf("%d connections after a reopening SYN", len(h.tr.conns))
	}
	vs := h.tr.Snapshot(h.now)
	if vs[0].ConntrackState != "" || vs[1].ConntrackState != "SYN_SENT" {
		t.Errorf("conntrack old %q new %q", vs[0].ConntrackState, vs[1].ConntrackState)
	}
	if vs[1].ClientState != tcp.SynSent {
		t.Errorf("new client %v", vs[1].ClientState)
	}
}

func TestJSONFields(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	var b bytes.Buffer
	if err := WriteJSON(&b, h.tr.Snapshot(h.now)); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client", "server", "client_state", "server_state", "conntrack_state",
		"conntrack_expire", "ipvs_state", "ipvs_expire", "packets_c2s", "packets_s2c", "bytes_c2s",
		"bytes_s2c", "retrans_c2s", "retrans_s2c", "zeek_state", "zeek_history"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b.String())
		}
	}
	if m["client_state"] != "ESTABLISHED" || m["conntrack_expire"] != float64(432000) ||
		m["ipvs_state"] != "ESTABLISHED" || m["ipvs_expire"] != float64(900) || m["packets_c2s"] != float64(2) {
		t.Errorf("values: %s", b.String())
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Errorf("want one line: %q", b.String())
	}
}

func TestRecordsLadder(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.tr = New(Config{Keep: func(a, b netip.AddrPort) bool { return true }})
	h.handshake()
	h.C(FA, 101, 501, 0)
	h.S(FA, 501, 101, 0) // crosses the client's FIN
	h.C(A, 102, 502, 0)
	h.S(A, 502, 102, 0)
	h.S(FA, 501, 102, 0) // retransmitted: the client's ACK was lost
	h.C(A, 102, 502, 0)
	h.tr.Finish(h.now.Add(2 * time.Minute))
	recs := h.tr.Conns()[0].Records()
	var b bytes.Buffer
	if err := trace.Ladder(&b, recs, trace.LadderOptions{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"SYN-SENT", "SYN-RECEIVED", "CLOSING", "TIME-WAIT", "X", "2MSL"} {
		if !strings.Contains(out, want) {
			t.Errorf("ladder lacks %q:\n%s", want, out)
		}
	}
	var steps, lostN int
	for _, r := range recs {
		if r.Kind == trace.KindLost {
			lostN++
		}
		if r.Kind == trace.KindSegmentOut {
			steps++
		}
	}
	if steps != 9 || lostN != 1 {
		t.Errorf("%d segments, %d lost; want 9 and 1", steps, lostN)
	}
	t.Log("\n" + out)
}

// The client's ACK of the server's FIN overtakes the client's own FIN
// before the capture point (its sequence number is past the FIN): the FIN
// was sent first, before the server's FIN arrived, so the FINs crossed.
func TestReorderedBeforeCapture(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.S(FA, 501, 101, 0)
	h.C(A, 102, 502, 0)  // beyond the client's highest sequence: held
	h.C(FA, 101, 501, 0) // fills the hole; does not ACK the server's FIN
	h.S(A, 502, 102, 0)
	h.want(tcp.TimeWait, tcp.TimeWait)
	if v := h.view(); v.ClientProven != tcp.Closing || v.Retrans != [2]uint64{} {
		t.Errorf("client proven %v (want CLOSING), retrans %v", v.ClientProven, v.Retrans)
	}
	// A hole that never fills (a loss before the capture point): the
	// held packet is taken after holdMax.
	h2 := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h2.handshake()
	h2.S(FA, 501, 101, 0)
	h2.C(A, 102, 502, 0)
	if vs := h2.tr.Snapshot(h2.now.Add(holdMax)); vs[0].ClientState != tcp.CloseWait || vs[0].ServerState != tcp.FinWait2 {
		t.Errorf("after holdMax: client %v server %v", vs[0].ClientState, vs[0].ServerState)
	}
}

// In direct routing the director sees only the client's packets: the
// server's RST of a refused connection never reaches it.
func TestIPVSModes(t *testing.T) {
	for _, c := range []struct {
		mode  ipvs.Mode
		state string
		left  int64
	}{{ipvs.NAT, "CLOSE", 10}, {ipvs.DR, "SYN_RECV", 59}} {
		h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:81")
		h.tr = New(Config{IPVSMode: c.mode})
		h.C(S, 100, 0, 0)
		h.S(RA, 0, 101, 0)
		v := h.view()
		if v.IPVSState != c.state || seconds(v.IPVSExpire) != c.left {
			t.Errorf("mode %v: %s %ds, want %s %ds", c.mode, v.IPVSState, seconds(v.IPVSExpire), c.state, c.left)
		}
	}
}
