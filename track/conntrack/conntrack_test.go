package conntrack

import (
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

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
	cISN = 1000 // client ISN
	sISN = 5000 // server ISN
	win  = 1000
)

// step is one packet and what the entry must look like right after it.
type step struct {
	at     time.Duration // packet time since t0
	dir    Dir
	flags  header.TCPFlags
	seq    uint32
	ack    uint32
	n      int    // payload length
	win    uint16 // window; 0 means the default win, use zeroWin for 0
	want   string // state name after the packet; "" = entry gone
	exp    time.Duration
	out    Outcome
	flags2 string // optional: "A" assured, "U" unreplied, "AU", "-" neither
}

const zeroWin = 0xffff // sentinel turned into a real 0 window

func (s step) packet() Packet {
	w := s.win
	switch w {
	case 0:
		w = win
	case zeroWin:
		w = 0
	}
	return Packet{T: t0.Add(s.at), Dir: s.dir, Flags: s.flags, Seq: seqnum.Value(s.seq),
		Ack: seqnum.Value(s.ack), Len: s.n, Window: w}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

const day = 24 * time.Hour

// handshake is a complete three-way handshake, client = Original.
var handshake = []step{
	{at: 0, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 120 * time.Second, out: Created, flags2: "U"},
	{at: ms(10), dir: Reply, flags: SA, seq: sISN, ack: cISN + 1, want: "SYN_RECV", exp: 60 * time.Second, out: Tracked, flags2: "-"},
	{at: ms(20), dir: Original, flags: A, seq: cISN + 1, ack: sISN + 1, want: "ESTABLISHED", exp: 5 * day, out: Tracked, flags2: "A"},
}

func with(prefix []step, rest ...step) []step {
	return append(append([]step(nil), prefix...), rest...)
}

func run(t *testing.T, steps []step) *Entry {
	t.Helper()
	var e *Entry
	for i, s := range steps {
		p := s.packet()
		if e == nil {
			var ok bool
			e, ok = New(p)
			if !ok {
				if s.want != "" || s.out != Refused {
					t.Fatalf("step %d: New refused the packet, want %q", i, s.want)
				}
				return nil
			}
		} else {
			e.Update(p)
		}
		state, exp, alive := e.At(p.T)
		if state != s.want || (alive && exp != s.exp) || alive != (s.want != "") {
			t.Fatalf("step %d (%v %v): got %q %v alive=%v, want %q %v", i, s.dir, s.flags, state, exp, alive, s.want, s.exp)
		}
		if e.LastOutcome() != s.out {
			t.Fatalf("step %d (%v %v): outcome %v, want %v", i, s.dir, s.flags, e.LastOutcome(), s.out)
		}
		if s.flags2 != "" {
			got := ""
			if e.Assured() {
				got += "A"
			}
			if e.Unreplied() {
				got += "U"
			}
			if got == "" {
				got = "-"
			}
			if got != s.flags2 {
				t.Fatalf("step %d: flags %q, want %q", i, got, s.flags2)
			}
		}
	}
	return e
}

func TestScenarios(t *testing.T) {
	sec := time.Second
	established := handshake
	tests := []struct {
		name  string
		steps []step
	}{
		{"handshake", handshake},
		{"client closes first", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(110), dir: Reply, flags: A, seq: sISN + 1, ack: cISN + 2, want: "CLOSE_WAIT", exp: 60 * sec, out: Tracked},
			step{at: ms(200), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(210), dir: Original, flags: A, seq: cISN + 2, ack: sISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked, flags2: "A"},
		)},
		{"server closes first", with(established,
			step{at: ms(100), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(110), dir: Original, flags: A, seq: cISN + 1, ack: sISN + 2, want: "CLOSE_WAIT", exp: 60 * sec, out: Tracked},
			step{at: ms(200), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(210), dir: Reply, flags: A, seq: sISN + 2, ack: cISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
		)},
		{"simultaneous close", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(101), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 1, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(110), dir: Original, flags: A, seq: cISN + 2, ack: sISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(111), dir: Reply, flags: A, seq: sISN + 2, ack: cISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
		)},
		// Simultaneous open: each side sends a SYN, then each a SYN,ACK.
		// The reply SYN (SYN_SENT -> SYN_SENT2) does not renew the timer:
		// the kernel skips the refresh for any SYN seen in SYN_SENT before
		// a reply.
		{"simultaneous open", []step{
			{at: 0, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 120 * sec, out: Created, flags2: "U"},
			{at: ms(5), dir: Reply, flags: S, seq: sISN, want: "SYN_SENT2", exp: 120*sec - ms(5), out: Tracked, flags2: "-"},
			{at: ms(10), dir: Original, flags: SA, seq: cISN, ack: sISN + 1, want: "SYN_RECV", exp: 60 * sec, out: Tracked},
			{at: ms(11), dir: Reply, flags: SA, seq: sISN, ack: cISN + 1, want: "SYN_RECV", exp: 60*sec - ms(1), out: Ignored},
			{at: ms(20), dir: Reply, flags: A, seq: sISN + 1, ack: cISN + 1, want: "ESTABLISHED", exp: 5 * day, out: Tracked, flags2: "A"},
		}},
		{"SYN retransmissions keep the first timer", []step{
			{at: 0, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 120 * sec, out: Created},
			{at: 1 * sec, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 119 * sec, out: Tracked},
			{at: 3 * sec, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 117 * sec, out: Tracked},
			{at: 7 * sec, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 113 * sec, out: Tracked, flags2: "U"},
		}},
		{"RST answering the SYN deletes the entry", []step{
			{at: 0, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 120 * sec, out: Created},
			{at: ms(1), dir: Reply, flags: RA, seq: 0, ack: cISN + 1, want: "", out: Deleted},
		}},
		{"client gives up with RST in SYN_SENT", []step{
			{at: 0, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 120 * sec, out: Created},
			{at: ms(1), dir: Original, flags: R, seq: cISN + 1, want: "", out: Deleted},
		}},
		{"RST in SYN_RECV", with(handshake[:2],
			step{at: ms(15), dir: Original, flags: R, seq: cISN + 1, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in ESTABLISHED with the exact sequence number", with(established,
			step{at: ms(50), dir: Reply, flags: RA, seq: sISN + 1, ack: cISN + 1, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in ESTABLISHED with an inexact sequence keeps the state, short timer", with(established,
			step{at: ms(50), dir: Reply, flags: R, seq: sISN + 500, want: "ESTABLISHED", exp: 10 * sec, out: Tracked},
		)},
		{"RST below the peer's highest ACK is invalid", with(established,
			step{at: ms(50), dir: Reply, flags: R, seq: sISN - 10, want: "ESTABLISHED", exp: 5*day - ms(30), out: Invalid},
		)},
		{"RST in FIN_WAIT", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(110), dir: Reply, flags: R, seq: sISN + 77, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in CLOSE_WAIT", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(110), dir: Reply, flags: A, seq: sISN + 1, ack: cISN + 2, want: "CLOSE_WAIT", exp: 60 * sec, out: Tracked},
			step{at: ms(120), dir: Reply, flags: RA, seq: sISN + 1, ack: cISN + 2, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in LAST_ACK", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(101), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(120), dir: Original, flags: R, seq: cISN + 2, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in TIME_WAIT", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(101), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(110), dir: Original, flags: A, seq: cISN + 2, ack: sISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(120), dir: Reply, flags: R, seq: sISN + 2, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in CLOSE", with(established,
			step{at: ms(50), dir: Reply, flags: RA, seq: sISN + 1, ack: cISN + 1, want: "CLOSE", exp: 10 * sec, out: Tracked},
			step{at: ms(60), dir: Original, flags: R, seq: cISN + 1, want: "CLOSE", exp: 10 * sec, out: Tracked},
		)},
		{"RST in SYN_SENT2", []step{
			{at: 0, dir: Original, flags: S, seq: cISN, want: "SYN_SENT", exp: 120 * sec, out: Created},
			{at: ms(5), dir: Reply, flags: S, seq: sISN, want: "SYN_SENT2", exp: 120*sec - ms(5), out: Tracked},
			{at: ms(6), dir: Original, flags: RA, seq: cISN + 1, ack: sISN + 1, want: "CLOSE", exp: 10 * sec, out: Tracked, flags2: "-"},
		}},
		// The server's FIN is seen, the client's last ACK is lost before
		// the middlebox: the entry sits in LAST_ACK and each retransmitted
		// FIN renews its 30 s until an ACK finally passes.
		{"lost final ACK", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(110), dir: Reply, flags: A, seq: sISN + 1, ack: cISN + 2, want: "CLOSE_WAIT", exp: 60 * sec, out: Tracked},
			step{at: ms(200), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: 1*sec + ms(200), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: 1*sec + ms(210), dir: Original, flags: A, seq: cISN + 2, ack: sISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
		)},
		// The last ACK passed the middlebox but was lost after it: the
		// server's retransmitted FIN keeps TIME_WAIT and renews its timer.
		{"final ACK lost after the middlebox", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(200), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(210), dir: Original, flags: A, seq: cISN + 2, ack: sISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
			step{at: 1*sec + ms(200), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
		)},
		// Mid-stream pick-up (nf_conntrack_tcp_loose=1): ESTABLISHED at
		// once but capped at the unacknowledged timeout until a reply has
		// been seen; ASSURED on the next packet after the reply.
		{"mid-stream pick-up", []step{
			{at: 0, dir: Original, flags: PA, seq: 7000, ack: 9000, n: 100, want: "ESTABLISHED", exp: 300 * sec, out: Created, flags2: "U"},
			{at: ms(10), dir: Reply, flags: A, seq: 9000, ack: 7100, want: "ESTABLISHED", exp: 300 * sec, out: Tracked, flags2: "-"},
			{at: ms(20), dir: Original, flags: A, seq: 7100, ack: 9000, want: "ESTABLISHED", exp: 5 * day, out: Tracked, flags2: "A"},
		}},
		// Outstanding data caps the timeout at 300 s until it is ACKed.
		{"unacknowledged data cap", with(established,
			step{at: ms(30), dir: Original, flags: PA, seq: cISN + 1, ack: sISN + 1, n: 500, want: "ESTABLISHED", exp: 300 * sec, out: Tracked},
			step{at: ms(40), dir: Reply, flags: PA, seq: sISN + 1, ack: cISN + 201, n: 10, want: "ESTABLISHED", exp: 300 * sec, out: Tracked},
			step{at: ms(50), dir: Original, flags: A, seq: cISN + 501, ack: sISN + 11, want: "ESTABLISHED", exp: 300 * sec, out: Tracked},
			step{at: ms(60), dir: Reply, flags: A, seq: sISN + 11, ack: cISN + 501, want: "ESTABLISHED", exp: 5 * day, out: Tracked},
		)},
		// Identical ACK-class packets are retransmissions; at the third
		// (nf_conntrack_tcp_max_retrans) the timeout drops to 300 s. The
		// handshake's last ACK is the first of the identical series.
		{"retransmission cap", with(established,
			step{at: 1 * sec, dir: Original, flags: A, seq: cISN + 1, ack: sISN + 1, want: "ESTABLISHED", exp: 5 * day, out: Tracked},
			step{at: 2 * sec, dir: Original, flags: A, seq: cISN + 1, ack: sISN + 1, want: "ESTABLISHED", exp: 5 * day, out: Tracked},
			step{at: 3 * sec, dir: Original, flags: A, seq: cISN + 1, ack: sISN + 1, want: "ESTABLISHED", exp: 300 * sec, out: Tracked},
			step{at: 4 * sec, dir: Reply, flags: A, seq: sISN + 1, ack: cISN + 1, want: "ESTABLISHED", exp: 5 * day, out: Tracked},
		)},
		{"zero window caps the timeout", []step{
			handshake[0], handshake[1],
			{at: ms(20), dir: Original, flags: A, seq: cISN + 1, ack: sISN + 1, win: zeroWin, want: "ESTABLISHED", exp: 300 * sec, out: Tracked},
		}},
		{"first packets that create nothing: SYN,ACK", []step{{dir: Original, flags: SA, out: Refused}}},
		{"first packets that create nothing: FIN,ACK", []step{{dir: Original, flags: FA, out: Refused}}},
		{"first packets that create nothing: RST", []step{{dir: Original, flags: R, out: Refused}}},
		{"first packets that create nothing: bare FIN", []step{{dir: Original, flags: header.FIN, out: Refused}}},
		{"invalid flags are not tracked", with(established,
			step{at: ms(30), dir: Original, flags: header.FIN, seq: cISN + 1, want: "ESTABLISHED", exp: 5*day - ms(10), out: Untracked},
			step{at: ms(40), dir: Original, flags: S | header.FIN, seq: cISN + 1, want: "ESTABLISHED", exp: 5*day - ms(20), out: Untracked},
		)},
		{"SYN,ACK from the client in SYN_SENT is invalid", []step{
			handshake[0],
			{at: ms(5), dir: Original, flags: SA, seq: cISN, ack: 1, want: "SYN_SENT", exp: 120*sec - ms(5), out: Invalid},
		}},
		{"ACK from the server before its SYN,ACK is ignored", []step{
			handshake[0],
			{at: ms(5), dir: Reply, flags: A, seq: sISN, ack: cISN + 1, want: "SYN_SENT", exp: 120*sec - ms(5), out: Ignored, flags2: "-"},
		}},
		{"a new SYN in ESTABLISHED is ignored", with(established,
			step{at: ms(30), dir: Original, flags: S, seq: 123456, want: "ESTABLISHED", exp: 5*day - ms(10), out: Ignored},
		)},
		{"reopening from TIME_WAIT makes a new entry", with(established,
			step{at: ms(100), dir: Original, flags: FA, seq: cISN + 1, ack: sISN + 1, want: "FIN_WAIT", exp: 120 * sec, out: Tracked},
			step{at: ms(101), dir: Reply, flags: FA, seq: sISN + 1, ack: cISN + 2, want: "LAST_ACK", exp: 30 * sec, out: Tracked},
			step{at: ms(110), dir: Original, flags: A, seq: cISN + 2, ack: sISN + 2, want: "TIME_WAIT", exp: 120 * sec, out: Tracked},
			step{at: 5 * sec, dir: Original, flags: S, seq: 90000, want: "SYN_SENT", exp: 120 * sec, out: Created, flags2: "U"},
		)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.steps) })
	}
}

// TestExpiryBoundary: an entry is gone exactly at its deadline, and the
// next packet then behaves as the first packet of a new entry.
func TestExpiryBoundary(t *testing.T) {
	e, ok := New(step{dir: Original, flags: S, seq: cISN}.packet())
	if !ok {
		t.Fatal("SYN refused")
	}
	deadline := t0.Add(120 * time.Second)
	if st, exp, alive := e.At(deadline.Add(-time.Nanosecond)); !alive || st != "SYN_SENT" || exp != time.Nanosecond {
		t.Fatalf("1ns before the deadline: %q %v %v", st, exp, alive)
	}
	if st, exp, alive := e.At(deadline); alive || st != "" || exp != 0 {
		t.Fatalf("at the deadline: %q %v %v, want gone", st, exp, alive)
	}
	// A FIN,ACK at the deadline finds no entry and creates none.
	e.Update(Packet{T: deadline, Dir: Original, Flags: FA, Seq: cISN + 1})
	if e.LastOutcome() != Refused {
		t.Fatalf("FIN after expiry: %v", e.LastOutcome())
	}
	if _, _, alive := e.At(deadline); alive {
		t.Fatal("FIN after expiry revived the entry")
	}
	// A reply-direction ACK then creates a picked-up entry whose original
	// direction is the caller's Reply.
	e.Update(Packet{T: deadline.Add(time.Second), Dir: Reply, Flags: A, Seq: 1, Ack: 2, Window: 100})
	st, exp, alive := e.At(deadline.Add(time.Second))
	if !alive || st != "ESTABLISHED" || exp != 300*time.Second || !e.Reversed() || !e.Unreplied() {
		t.Fatalf("ACK after expiry: %q %v alive=%v reversed=%v unreplied=%v", st, exp, alive, e.Reversed(), e.Unreplied())
	}
	// The caller's Original is now the entry's reply direction.
	e.Update(Packet{T: deadline.Add(2 * time.Second), Dir: Original, Flags: A, Seq: 2, Ack: 1, Window: 100})
	if e.Unreplied() {
		t.Fatal("a packet in the caller's Original direction did not count as the reply")
	}
}

// TestLooseOff: with nf_conntrack_tcp_loose=0 a mid-stream ACK creates
// nothing.
func TestLooseOff(t *testing.T) {
	cfg := Defaults()
	cfg.Loose = false
	if _, ok := NewWithConfig(Packet{T: t0, Flags: A, Seq: 1, Ack: 1, Window: 1}, cfg); ok {
		t.Fatal("ACK created an entry with loose off")
	}
	if _, ok := NewWithConfig(Packet{T: t0, Flags: S, Seq: 1}, cfg); !ok {
		t.Fatal("SYN refused with loose off")
	}
}

// kernelTable is tcp_conntracks as the kernel lays it out: per direction,
// per flag class, the next state for each current state in the order
// NONE SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT
// CLOSE SYN_SENT2 (IV = invalid, IG = ignore). Checking the transposed Go
// table against it catches transcription slips.
var kernelTable = [2][numClasses]string{
	{
		"SS SS IG IG IG IG IG SS SS S2", // syn
		"IV IV SR IV IV IV IV IV IV SR", // synack
		"IV IV FW FW LA LA LA TW CL IV", // fin
		"ES IV ES ES CW CW TW TW CL IV", // ack
		"IV CL CL CL CL CL CL CL CL CL", // rst
		"IV IV IV IV IV IV IV IV IV IV", // none
	},
	{
		"IV S2 IV IV IV IV IV SS IV S2",
		"IV SR IG IG IG IG IG IG IG SR",
		"IV IV FW FW LA LA LA TW CL IV",
		"IV IG SR ES CW CW TW TW CL IG",
		"IV CL CL CL CL CL CL CL CL CL",
		"IV IV IV IV IV IV IV IV IV IV",
	},
}

func TestTableMatchesKernel(t *testing.T) {
	abbrev := map[State]string{None: "NO", SynSent: "SS", SynRecv: "SR", Established: "ES", FinWait: "FW",
		CloseWait: "CW", LastAck: "LA", TimeWait: "TW", Close: "CL", SynSent2: "S2", inv: "IV", ign: "IG"}
	for d := 0; d < 2; d++ {
		for c := class(0); c < numClasses; c++ {
			want := strings.Fields(kernelTable[d][c])
			for s := State(0); s < numStates; s++ {
				if got := abbrev[transitions[d][s][c]]; got != want[s] {
					t.Errorf("dir %d %v in %v: table has %s, kernel %s", d, c, s, got, want[s])
				}
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Defaults()
	want := map[State]time.Duration{SynSent: 120 * time.Second, SynRecv: 60 * time.Second,
		Established: 432000 * time.Second, FinWait: 120 * time.Second, CloseWait: 60 * time.Second,
		LastAck: 30 * time.Second, TimeWait: 120 * time.Second, Close: 10 * time.Second, SynSent2: 120 * time.Second}
	for s, d := range want {
		if c.timeout(s) != d {
			t.Errorf("%v: %v, want %v", s, c.timeout(s), d)
		}
	}
	if c.MaxRetrans != 300*time.Second || c.Unacknowledged != 300*time.Second || c.MaxRetransCount != 3 || !c.Loose {
		t.Errorf("caps: %+v", c)
	}
}

var validNames = map[string]bool{"": true, "NONE": true, "SYN_SENT": true, "SYN_RECV": true,
	"ESTABLISHED": true, "FIN_WAIT": true, "CLOSE_WAIT": true, "LAST_ACK": true, "TIME_WAIT": true,
	"CLOSE": true, "SYN_SENT2": true}

// FuzzEntry feeds arbitrary packet sequences: 6 bytes per packet (flags,
// direction+time step, seq, ack, length/window).
func FuzzEntry(f *testing.F) {
	f.Add([]byte{byte(S), 0, 1, 0, 0, 0, byte(SA), 1, 5, 2, 0, 0, byte(A), 0, 2, 5, 0, 0})
	f.Add([]byte{byte(PA), 0, 1, 1, 10, 10, byte(R), 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var e *Entry
		now := t0
		maxTO := 5 * day
		for len(data) >= 6 {
			b := data[:6]
			data = data[6:]
			now = now.Add(time.Duration(b[1]>>1) * time.Second)
			p := Packet{T: now, Dir: Dir(b[1] & 1), Flags: header.TCPFlags(b[0]),
				Seq: seqnum.Value(uint32(b[2]) << 24 >> uint(b[4]&7)), Ack: seqnum.Value(uint32(b[3]) << 24 >> uint(b[4]&7)),
				Len: int(b[4] >> 3), Window: uint16(b[5])}
			if e == nil {
				var ok bool
				if e, ok = New(p); !ok {
					continue
				}
			} else {
				e.Update(p)
			}
			st, exp, alive := e.At(now)
			if !validNames[st] || exp < 0 || exp > maxTO || alive != (st != "") {
				t.Fatalf("bad report %q %v %v", st, exp, alive)
			}
			if e.Assured() && e.Unreplied() {
				t.Fatal("assured but unreplied")
			}
		}
	})
}

// TestMake checks that Make gives the entry New gives, by value, and
// refuses what New refuses.
func TestMake(t *testing.T) {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []Packet{
		{T: at, Flags: header.SYN, Seq: 100},
		{T: at, Flags: header.ACK, Seq: 100, Ack: 7, Window: 10},
		{T: at, Flags: header.SYN | header.ACK, Seq: 100, Ack: 7},
		{T: at, Flags: header.RST, Seq: 100},
	} {
		n, nok := New(p)
		m, mok := Make(p)
		if nok != mok || nok && *n != m {
			t.Errorf("%v: New %v %+v, Make %v %+v", p.Flags, nok, n, mok, m)
		}
	}
}
