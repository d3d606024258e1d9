package zeek

import (
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

const (
	S  = header.SYN
	SA = header.SYN | header.ACK
	A  = header.ACK
	PA = header.PSH | header.ACK
	FA = header.FIN | header.ACK
	R  = header.RST
	RA = header.RST | header.ACK
)

const (
	c0 = 1000 // client ISN
	s0 = 5000 // server ISN
)

// pk builds a packet; w is the window (the default 1000 when 0 is not
// wanted is written out explicitly by the callers).
func pk(d Dir, f header.TCPFlags, seq, ack uint32, n int) Packet {
	return Packet{Dir: d, Flags: f, Seq: seqnum.Value(seq), Ack: seqnum.Value(ack), Len: n, Window: 1000}
}

var (
	syn    = pk(Forward, S, c0, 0, 0)
	synack = pk(Backward, SA, s0, c0+1, 0)
	ack3   = pk(Forward, A, c0+1, s0+1, 0)
	hs     = []Packet{syn, synack, ack3}
)

func seq(parts ...[]Packet) []Packet {
	var out []Packet
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(p ...Packet) []Packet { return p }

func feed(ps []Packet) *Flow {
	f := New()
	for _, p := range ps {
		f.Packet(p)
	}
	return f
}

func TestConnStates(t *testing.T) {
	withPorts := func(p Packet, src, dst uint16) Packet { p.SrcPort, p.DstPort = src, dst; return p }
	// The server's SYN,ACK seen first, from port 80: Zeek flips, so the
	// server is the responder.
	synackFirst := withPorts(pk(Forward, SA, s0, c0+1, 0), 80, 40000)
	tests := []struct {
		name, state, hist string
		pkts              []Packet
	}{
		{"S0: a SYN alone", "S0", "S", one(syn)},
		{"S0: SYN retransmitted", "S0", "S", one(syn, syn, syn)},
		{"S1: handshake", "S1", "ShA", hs},
		{"SF: full exchange and close", "SF", "ShADadFf", seq(hs, one(
			pk(Forward, PA, c0+1, s0+1, 100),
			pk(Backward, A, s0+1, c0+101, 0),
			pk(Backward, PA, s0+1, c0+101, 50),
			pk(Forward, A, c0+101, s0+51, 0),
			pk(Forward, FA, c0+101, s0+51, 0),
			pk(Backward, A, s0+51, c0+102, 0),
			pk(Backward, FA, s0+51, c0+102, 0),
			pk(Forward, A, c0+102, s0+52, 0),
		))},
		{"REJ: SYN answered by RST", "REJ", "Sr", one(syn, pk(Backward, RA, 0, c0+1, 0))},
		{"S2: originator's FIN only", "S2", "ShAF", seq(hs, one(pk(Forward, FA, c0+1, s0+1, 0)))},
		{"S3: responder's FIN only", "S3", "ShAf", seq(hs, one(pk(Backward, FA, s0+1, c0+1, 0)))},
		{"RSTO: originator aborts", "RSTO", "ShAR", seq(hs, one(pk(Forward, R, c0+1, 0, 0)))},
		{"RSTR: responder aborts", "RSTR", "ShAr", seq(hs, one(pk(Backward, R, s0+1, 0, 0)))},
		{"RSTOS0: SYN then the originator's RST", "RSTOS0", "SR", one(syn, pk(Forward, R, c0+1, 0, 0))},
		{"RSTRH: SYN,ACK then RST from the responder", "RSTRH", "^hr",
			one(synackFirst, pk(Forward, R, s0+1, 0, 0))},
		{"SH: SYN then the originator's FIN", "SH", "SF", one(syn, pk(Forward, FA, c0+1, 0, 0))},
		{"SHR: SYN,ACK then FIN from the responder", "SHR", "^hf",
			one(synackFirst, pk(Forward, FA, s0+1, c0+1, 0))},
		{"OTH: midstream traffic", "OTH", "Da",
			one(pk(Forward, PA, 7000, 9000, 10), pk(Backward, A, 9000, 7010, 0))},
		{"OTH: midstream then originator RST", "OTH", "DR",
			one(pk(Forward, PA, 7000, 9000, 10), pk(Forward, R, 7010, 0, 0))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := feed(tc.pkts)
			if f.State() != tc.state || f.History() != tc.hist {
				t.Fatalf("got %s %q (orig %v, resp %v), want %s %q", f.State(), f.History(),
					f.OrigState(), f.RespState(), tc.state, tc.hist)
			}
		})
	}
}

func TestHistoryLetters(t *testing.T) {
	data := pk(Forward, PA, c0+1, s0+1, 100)
	tests := []struct {
		name, hist string
		pkts       []Packet
	}{
		{"retransmitted data", "ShADT", seq(hs, one(data, data))},
		{"responder retransmits", "ShAdt", seq(hs, one(pk(Backward, PA, s0+1, c0+1, 10), pk(Backward, PA, s0+1, c0+1, 10)))},
		{"zero window from the responder (its first pure ACK too)", "ShAaw", seq(hs, one(Packet{Dir: Backward, Flags: A, Seq: s0 + 1, Ack: c0 + 1}))},
		{"bad checksum is noted and the packet dropped", "SC", one(syn, Packet{Dir: Forward, Flags: A, Seq: c0 + 1, BadChecksum: true, Window: 9})},
		{"SYN+FIN is a multi-flag packet", "Q", one(pk(Forward, S|header.FIN, c0, 0, 0))},
		{"FIN+RST is inconsistent", "ShAI", seq(hs, one(pk(Forward, header.FIN|R|A, c0+1, s0+1, 0)))},
		{"a retransmitted FIN is recorded once", "ShAF", seq(hs, one(pk(Forward, FA, c0+1, s0+1, 0), pk(Forward, FA, c0+1, s0+1, 0)))},
		{"a FIN at a new sequence is recorded again", "ShAFF", seq(hs, one(pk(Forward, FA, c0+1, s0+1, 0), pk(Forward, FA, c0+1, s0+1, 5)))},
		{"a FIN resent after data beyond it is recorded once", "ShAFD", seq(hs, one(pk(Forward, FA, c0+1, s0+1, 0), pk(Forward, PA, c0+2, s0+1, 10), pk(Forward, FA, c0+1, s0+1, 0)))},
		{"a RST at a new sequence is recorded again", "ShArr", seq(hs, one(pk(Backward, R, s0+1, 0, 0), pk(Backward, R, s0+9, 0, 0)))},
		{"a pure ACK and data are recorded once per side", "ShAD", seq(hs, one(data, pk(Forward, PA, c0+101, s0+1, 5), pk(Forward, A, c0+106, s0+1, 0)))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if f := feed(tc.pkts); f.History() != tc.hist {
				t.Fatalf("history %q, want %q", f.History(), tc.hist)
			}
		})
	}
}

// TestScaledLetters: t, w and c are repeated when their count reaches 10,
// 100, 1000 ...
func TestScaledLetters(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{1, "T"}, {6, "T"}, {7, "T"}, {8, "T"}, {9, "T"}, {10, "TT"}, {99, "TT"}, {100, "TTT"}, {1000, "TTTT"}} {
		f := feed(hs)
		data := pk(Forward, PA, c0+1, s0+1, 100)
		f.Packet(data)
		for i := 0; i < tc.n; i++ {
			f.Packet(data)
		}
		if got := strings.TrimPrefix(f.History(), "ShAD"); got != tc.want {
			t.Errorf("%d retransmissions: %q, want %q", tc.n, got, tc.want)
		}
	}
	f := feed(hs)
	for i := 0; i < 10; i++ {
		f.Packet(Packet{Dir: Backward, Flags: A, Seq: s0 + 1, Ack: c0 + 1})
	}
	if f.History() != "ShAaww" {
		t.Errorf("10 zero windows: %q", f.History())
	}
}

// TestFlips covers the two ways Zeek swaps roles.
func TestFlips(t *testing.T) {
	// 1. By port: the first packet is data from port 443 to port 50000.
	f := New()
	p := pk(Forward, PA, s0+1, c0+1, 10)
	p.SrcPort, p.DstPort = 443, 50000
	f.Packet(p)
	f.Packet(pk(Backward, A, c0+1, s0+11, 0))
	if !f.Flipped() || f.History() != "^dA" {
		t.Errorf("port flip: flipped=%v %q", f.Flipped(), f.History())
	}
	// A SYN first is never flipped by port.
	f = New()
	p = syn
	p.SrcPort, p.DstPort = 443, 50000
	f.Packet(p)
	if f.Flipped() || f.History() != "S" {
		t.Errorf("SYN from a server port: flipped=%v %q", f.Flipped(), f.History())
	}
	// Both ports likely servers: flip only a non-SYN from the lower port.
	f = New()
	p = pk(Forward, A, 1, 1, 0)
	p.SrcPort, p.DstPort = 80, 443
	f.Packet(p)
	if !f.Flipped() {
		t.Error("ACK from 80 to 443 not flipped")
	}
	f = New()
	p = pk(Forward, SA, 1, 1, 0)
	p.SrcPort, p.DstPort = 80, 443
	f.Packet(p)
	if f.Flipped() {
		t.Error("SYN,ACK from 80 to 443 flipped")
	}
	// No port information: a SYN,ACK first keeps its sender as originator.
	f = feed(one(pk(Forward, SA, s0, c0+1, 0)))
	if f.Flipped() || f.History() != "H" || f.OrigState() != SynAckSent {
		t.Errorf("SYN,ACK first without ports: flipped=%v %q %v", f.Flipped(), f.History(), f.OrigState())
	}

	// 2. Reordered handshake: the SYN,ACK arrives before the SYN it
	// answers; the SYN's arrival flips the roles.
	f = feed(one(
		pk(Forward, SA, s0, c0+1, 0),
		pk(Backward, S, c0, 0, 0),
		pk(Backward, A, c0+1, s0+1, 0),
	))
	if !f.Flipped() || f.History() != "Hs^A" || f.State() != "S1" {
		t.Errorf("reordered handshake: flipped=%v %q %s", f.Flipped(), f.History(), f.State())
	}
}

func TestSynThenRst(t *testing.T) {
	for h, want := range map[string]bool{"SR": true, "^SR": true, "SdR": true, "SaR": true,
		"SAR": false, "ShR": true, "SHR": false, "R": false, "S": false, "DSR": false} {
		if synThenRst(h) != want {
			t.Errorf("%q: %v", h, !want)
		}
	}
}

var validStates = map[string]bool{"": true, "S0": true, "S1": true, "SF": true, "REJ": true, "S2": true,
	"S3": true, "RSTO": true, "RSTR": true, "RSTOS0": true, "RSTRH": true, "SH": true, "SHR": true, "OTH": true}

// FuzzFlow feeds arbitrary packets (7 bytes each) and checks that State is
// a conn_state and History uses only Zeek's letters.
func FuzzFlow(f *testing.F) {
	f.Add([]byte{byte(S), 0, 1, 0, 0, 0, 1, byte(SA), 1, 5, 2, 0, 0, 1})
	f.Add([]byte{byte(PA), 0x80, 1, 1, 10, 10, 0, byte(R), 1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fl := New()
		for len(data) >= 7 {
			b := data[:7]
			data = data[7:]
			p := Packet{Dir: Dir(b[1] & 1), Flags: header.TCPFlags(b[0]),
				Seq: seqnum.Value(uint32(b[2]) << (b[4] & 31)), Ack: seqnum.Value(uint32(b[3]) << (b[4] & 31)),
				Len: int(b[5]), Window: uint16(b[6]), BadChecksum: b[1]&2 != 0,
				SrcPort: uint16(b[1]>>2) * 40, DstPort: uint16(b[6]) * 10}
			fl.Packet(p)
			if !validStates[fl.State()] {
				t.Fatalf("state %q", fl.State())
			}
		}
		for _, c := range fl.History() {
			if !strings.ContainsRune("sShHaAdDfFrRcCtTwWiIqQ^", c) {
				t.Fatalf("history %q has %q", fl.History(), c)
			}
		}
	})
}

func TestMeanings(t *testing.T) {
	for code := range validStates {
		if code != "" && StateMeaning(code) == "" {
			t.Errorf("no meaning for %s", code)
		}
	}
	if StateMeaning("XYZ") != "" {
		t.Error("meaning for an unknown code")
	}
	if !strings.HasPrefix(HistoryMeaning('d'), "responder") || !strings.HasPrefix(HistoryMeaning('D'), "originator") ||
		HistoryMeaning('z') != "" || HistoryMeaning('^') == "" {
		t.Errorf("history meanings: %q %q %q", HistoryMeaning('d'), HistoryMeaning('D'), HistoryMeaning('z'))
	}
}

// TestLongHistory checks that a history longer than what a Flow holds
// inline is kept whole, and that scaled letters come when a count reaches
// 1, 10, 100, ...: 1000 retransmissions give four 'T', 100000 zero
// windows six 'w'.
func TestLongHistory(t *testing.T) {
	f := New()
	f.Packet(Packet{Flags: header.SYN, Seq: 100, Window: 1000})
	f.Packet(Packet{Dir: Backward, Flags: header.SYN | header.ACK, Seq: 500, Ack: 101, Window: 1000})
	f.Packet(Packet{Flags: header.ACK, Seq: 101, Ack: 501, Window: 1000})
	f.Packet(Packet{Flags: header.ACK | header.PSH, Seq: 101, Ack: 501, Len: 10, Window: 1000})
	for range 1000 {
		f.Packet(Packet{Flags: header.ACK | header.PSH, Seq: 101, Ack: 501, Len: 10, Window: 1000})
		f.Packet(Packet{Dir: Backward, Flags: header.ACK, Seq: 501, Ack: 111})
	}
	want := "ShADTawTwTwTw"
	if f.History() != want {
		t.Fatalf("history %q, want %q", f.History(), want)
	}
	for range 99000 {
		f.Packet(Packet{Dir: Backward, Flags: header.ACK, Seq: 501, Ack: 111})
	}
	want += "ww"
	if f.History() != want || len(want) <= histInline {
		t.Fatalf("history %q, want %q (longer than the %d letters held inline)", f.History(), want, histInline)
	}
}
