package ipvs

import (
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// kernelTable is tcp_states as the kernel lays it out: per direction
// (INPUT, OUTPUT, INPUT_ONLY), per flag class (syn, fin, ack, rst), the next
// state for each current state in the order NONE ESTABLISHED SYN_SENT
// SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK.
var kernelTable = [numOffsets][numClasses]string{
	{ // INPUT
		"SR ES ES SR SR SR SR SR SR SR SR",
		"CL CW SS TW TW TW CL CW LA LI TW",
		"ES ES SS ES FW TW CL CW CL LI ES",
		"CL CL CL SR CL CL CL CL LA LI SR",
	},
	{ // OUTPUT
		"SS ES SS SR SS SS SS SS SS LI SR",
		"TW FW SS TW FW TW CL TW LA LI TW",
		"ES ES SS ES FW TW CL CW LA ES ES",
		"CL CL SS CL CL TW CL CL CL CL CL",
	},
	{ // INPUT_ONLY
		"SR ES ES SR SR SR SR SR SR SR SR",
		"CL FW SS TW FW TW CL CW LA LI TW",
		"ES ES SS ES FW TW CL CW CL LI ES",
		"CL CL CL SR CL CL CL CL LA LI CL",
	},
}

var abbrev = map[string]State{"NO": None, "ES": Established, "SS": SynSent, "SR": SynRecv,
	"FW": FinWait, "TW": TimeWait, "CL": Close, "CW": CloseWait, "LA": LastAck, "LI": Listen, "SA": SynAck}

// classFlags gives, per class, flag sets that select it (tcp_state_idx: RST
// beats SYN beats FIN beats ACK).
var classFlags = [numClasses][]header.TCPFlags{
	clsSyn: {header.SYN, header.SYN | header.ACK, header.SYN | header.FIN},
	clsFin: {header.FIN, header.FIN | header.ACK},
	clsAck: {header.ACK, header.ACK | header.PSH},
	clsRst: {header.RST, header.RST | header.ACK, header.RST | header.SYN},
}

// TestEveryCell drives an entry in each state with each flag class in each
// direction, in NAT and DR mode, and checks the next state and its timer
// against the kernel's table.
func TestEveryCell(t *testing.T) {
	cfg := Defaults()
	for _, mode := range []Mode{NAT, DR} {
		for _, dir := range []Dir{FromClient, FromServer} {
			for c := class(0); c < numClasses; c++ {
				for s := State(0); s < numStates; s++ {
					for _, f := range classFlags[c] {
						e := &Entry{mode: mode, alive: true, noOutput: mode == DR,
							state: s, deadline: t0.Add(time.Hour).UnixNano()}
						now := t0.Add(time.Second)
						e.Update(Packet{T: now, Dir: dir, Flags: f})
						st, exp, alive := e.At(now)
						if mode == DR && dir == FromServer {
							// The director never sees it.
							if e.LastOutcome() != Unseen || e.State() != s || exp != time.Hour-time.Second {
								t.Errorf("DR %v from server: changed to %q %v (%v)", s, st, exp, e.LastOutcome())
							}
							continue
						}
						half := offInput
						switch {
						case dir == FromServer:
							half = offOutput
						case mode == DR:
							half = offInputOnly
						}
						want := abbrev[strings.Fields(kernelTable[half][c])[s]]
						if !alive || st != want.String() || exp != cfg.timeout(want) || e.LastOutcome() != Tracked {
							t.Errorf("mode %d dir %d %v in %v: got %q %v, want %v %v", mode, dir, f, s, st, exp, want, cfg.timeout(want))
						}
					}
				}
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Defaults()
	want := map[State]time.Duration{None: 2 * time.Second, Established: 900 * time.Second,
		SynSent: 120 * time.Second, SynRecv: 60 * time.Second, FinWait: 120 * time.Second,
		TimeWait: 120 * time.Second, Close: 10 * time.Second, CloseWait: 60 * time.Second,
		LastAck: 30 * time.Second, Listen: 120 * time.Second, SynAck: 120 * time.Second}
	for s, d := range want {
		if c.timeout(s) != d {
			t.Errorf("%v: %v, want %v", s, c.timeout(s), d)
		}
	}
}

type step struct {
	at    time.Duration
	dir   Dir
	flags header.TCPFlags
	want  string // state after; "" = gone
	exp   time.Duration
}

const (
	S  = header.SYN
	SA = header.SYN | header.ACK
	A  = header.ACK
	FA = header.FIN | header.ACK
	R  = header.RST
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestScenarios(t *testing.T) {
	sec := time.Second
	tests := []struct {
		name  string
		mode  Mode
		steps []step
	}{
		{"NAT: client closes, ends in TIME_WAIT", NAT, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromServer, SA, "SYN_RECV", 60 * sec},
			{ms(2), FromClient, A, "ESTABLISHED", 15 * time.Minute},
			{ms(50), FromClient, FA, "CLOSE_WAIT", 60 * sec},
			{ms(51), FromServer, A, "CLOSE_WAIT", 60 * sec},
			{ms(60), FromServer, FA, "TIME_WAIT", 120 * sec},
			{ms(61), FromClient, A, "TIME_WAIT", 120 * sec},
		}},
		{"NAT: server closes, ends in TIME_WAIT", NAT, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromServer, SA, "SYN_RECV", 60 * sec},
			{ms(2), FromClient, A, "ESTABLISHED", 15 * time.Minute},
			{ms(50), FromServer, FA, "FIN_WAIT", 120 * sec},
			{ms(51), FromClient, A, "FIN_WAIT", 120 * sec},
			{ms(60), FromClient, FA, "TIME_WAIT", 120 * sec},
			{ms(61), FromServer, A, "TIME_WAIT", 120 * sec},
		}},
		// DR: the director sees the client's half only. The client's FIN
		// gives FIN_WAIT and its last ACK keeps it there.
		{"DR: client closes, ends in FIN_WAIT", DR, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromServer, SA, "SYN_RECV", 60*sec - ms(1)},
			{ms(2), FromClient, A, "ESTABLISHED", 15 * time.Minute},
			{ms(50), FromClient, FA, "FIN_WAIT", 120 * sec},
			{ms(60), FromServer, FA, "FIN_WAIT", 120*sec - ms(10)},
			{ms(61), FromClient, A, "FIN_WAIT", 120 * sec},
		}},
		{"DR: server closes first, client's FIN,ACK", DR, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(2), FromClient, A, "ESTABLISHED", 15 * time.Minute},
			{ms(51), FromClient, A, "ESTABLISHED", 15 * time.Minute},
			{ms(60), FromClient, FA, "FIN_WAIT", 120 * sec},
		}},
		// A SYN flood: the spoofed clients never answer, each entry sits in
		// SYN_RECV counting down from 60 s and then disappears.
		{"SYN flood entry counts down from 60 s", NAT, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromServer, SA, "SYN_RECV", 60 * sec},
		}},
		{"RST from the client closes", NAT, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromServer, SA, "SYN_RECV", 60 * sec},
			{ms(2), FromClient, A, "ESTABLISHED", 15 * time.Minute},
			{ms(3), FromClient, R | A, "CLOSE", 10 * sec},
		}},
		{"RST from the server in SYN_RECV closes", NAT, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromServer, R | A, "CLOSE", 10 * sec},
		}},
		{"a packet without SYN/FIN/ACK/RST sends the entry to CLOSE", NAT, []step{
			{0, FromClient, S, "SYN_RECV", 60 * sec},
			{ms(1), FromClient, header.PSH, "CLOSE", 10 * sec},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e *Entry
			for i, s := range tc.steps {
				p := Packet{T: t0.Add(s.at), Dir: s.dir, Flags: s.flags}
				if e == nil {
					var ok bool
					if e, ok = New(p, tc.mode); !ok {
						t.Fatalf("step %d: refused", i)
					}
				} else {
					e.Update(p)
				}
				st, exp, _ := e.At(p.T)
				if st != s.want || exp != s.exp {
					t.Fatalf("step %d (%v %v): got %q %v, want %q %v", i, s.dir, s.flags, st, exp, s.want, s.exp)
				}
			}
		})
	}
}

func TestSynFloodExpiry(t *testing.T) {
	e, ok := New(Packet{T: t0, Dir: FromClient, Flags: S}, NAT)
	if !ok {
		t.Fatal("SYN refused")
	}
	if st, exp, alive := e.At(t0.Add(45 * time.Second)); !alive || st != "SYN_RECV" || exp != 15*time.Second {
		t.Fatalf("at 45 s: %q %v %v", st, exp, alive)
	}
	if !e.Active() {
		t.Fatal("SYN_RECV should count as an active connection")
	}
	if st, exp, alive := e.At(t0.Add(60 * time.Second)); alive || st != "" || exp != 0 {
		t.Fatalf("at 60 s: %q %v %v, want gone", st, exp, alive)
	}
	// After expiry an ACK from the client finds nothing and creates nothing.
	e.Update(Packet{T: t0.Add(61 * time.Second), Dir: FromClient, Flags: A})
	if e.LastOutcome() != Refused {
		t.Fatalf("ACK after expiry: %v", e.LastOutcome())
	}
	// A new SYN creates a fresh entry.
	e.Update(Packet{T: t0.Add(62 * time.Second), Dir: FromClient, Flags: S})
	if st, exp, alive := e.At(t0.Add(62 * time.Second)); !alive || st != "SYN_RECV" || exp != 60*time.Second || e.LastOutcome() != Created {
		t.Fatalf("SYN after expiry: %q %v %v %v", st, exp, alive, e.LastOutcome())
	}
}

func TestCreation(t *testing.T) {
	for _, tc := range []struct {
		p      Packet
		sloppy bool
		ok     bool
		state  string
	}{
		{Packet{Dir: FromClient, Flags: S}, false, true, "SYN_RECV"},
		{Packet{Dir: FromClient, Flags: SA}, false, true, "SYN_RECV"}, // no ACK check (active FTP)
		{Packet{Dir: FromClient, Flags: A}, false, false, ""},
		{Packet{Dir: FromClient, Flags: A}, true, true, "ESTABLISHED"},
		{Packet{Dir: FromClient, Flags: FA}, true, true, "CLOSE"},
		{Packet{Dir: FromClient, Flags: R}, true, false, ""},
		{Packet{Dir: FromServer, Flags: SA}, true, false, ""},
	} {
		cfg := Defaults()
		cfg.SloppyTCP = tc.sloppy
		tc.p.T = t0
		e, ok := NewWithConfig(tc.p, NAT, cfg)
		if ok != tc.ok {
			t.Errorf("%v sloppy=%v: created=%v, want %v", tc.p.Flags, tc.sloppy, ok, tc.ok)
			continue
		}
		if ok {
			if st, _, _ := e.At(t0); st != tc.state {
				t.Errorf("%v sloppy=%v: %q, want %q", tc.p.Flags, tc.sloppy, st, tc.state)
			}
		}
	}
}

// FuzzEntry feeds arbitrary packet sequences in both modes.
func FuzzEntry(f *testing.F) {
	f.Add([]byte{byte(S), 0, byte(SA), 3, byte(A), 0, byte(FA), 2})
	f.Add([]byte{byte(R), 1, byte(A), 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mode := range []Mode{NAT, DR} {
			cfg := Defaults()
			cfg.SloppyTCP = len(data) > 0 && data[0]&0x80 != 0
			var e *Entry
			now := t0
			for i := 0; i+1 < len(data); i += 2 {
				now = now.Add(time.Duration(data[i+1]>>1) * time.Second)
				p := Packet{T: now, Dir: Dir(data[i+1] & 1), Flags: header.TCPFlags(data[i])}
				if e == nil {
					var ok bool
					if e, ok = NewWithConfig(p, mode, cfg); !ok {
						continue
					}
				} else {
					e.Update(p)
				}
				st, exp, alive := e.At(now)
				if alive != (st != "") || exp < 0 || exp > 15*time.Minute {
					t.Fatalf("bad report %q %v %v", st, exp, alive)
				}
				if alive && e.State().String() != st {
					t.Fatalf("state %v vs %q", e.State(), st)
				}
				if _, ok := abbrevByName[st]; !ok && st != "" {
					t.Fatalf("unknown state name %q", st)
				}
			}
		}
	})
}

var abbrevByName = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range abbrev {
		m[s.String()] = true
	}
	m["NONE"] = true
	return m
}()

// TestMake checks that Make gives the entry New gives, by value, and
// refuses what New refuses.
func TestMake(t *testing.T) {
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []Packet{
		{T: at, Dir: FromClient, Flags: header.SYN},
		{T: at, Dir: FromClient, Flags: header.ACK},
		{T: at, Dir: FromServer, Flags: header.SYN | header.ACK},
		{T: at, Dir: FromClient, Flags: header.RST},
	} {
		for _, mode := range []Mode{NAT, DR} {
			n, nok := New(p, mode)
			m, mok := Make(p, mode)
			if nok != mok || nok && *n != m {
				t.Errorf("%v %v: New %v %+v, Make %v %+v", p.Flags, mode, nok, n, mok, m)
			}
		}
	}
}
