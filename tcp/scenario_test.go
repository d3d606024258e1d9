package tcp

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"
)

// The ten scenarios of DESIGN.md, each with the exact segments exchanged
// and both sides' state sequences. A is the client at 10.0.0.1:40000 with
// ISS 100, B the server at 10.0.0.2:80 with ISS 300.

// Scenario 1: the three-way handshake. The SYN consumes one sequence
// number, so B acknowledges 101 and A acknowledges 301.
func TestScenarioHandshake(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	p.a.wantStates(Closed, SynSent, Established)
	p.b.wantStates(Closed, Listen, SynReceived, Established)
	// Both SYNs announce the MSS (RFC 9293 §3.7.1), and each side sends at
	// most the smaller of the two.
	q := newPair(t, Config{MSS: 1000})
	q.a.c.Connect(q.k.now, 100)
	syn := q.a.take()[0]
	if !syn.Options.HasMSS || syn.Options.MSS != 1000 {
		t.Fatalf("SYN options %+v, want MSS 1000", syn.Options)
	}
	q.b.c.Listen(q.k.now, 300)
	syn.Options.MSS = 900
	q.b.in(syn)
	if synack := q.b.take()[0]; !synack.Options.HasMSS || synack.Options.MSS != 1000 {
		t.Fatalf("SYN,ACK options %+v, want MSS 1000", synack.Options)
	}
	if got := q.b.c.Status().SndMSS; got != 900 {
		t.Fatalf("B's send MSS = %d, want the peer's 900", got)
	}
	if st := p.a.c.Status(); st.SndMSS != DefaultMSS || st.SndUna != 101 || st.SndNxt != 101 || st.RcvNxt != 301 {
		t.Errorf("A's TCB after the handshake: %+v", st)
	}
}

// Scenario 2: data in both directions, each acknowledged.
func TestScenarioData(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	if n, err := p.a.c.Write(p.k.now, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	p.b.in(p.a.expect1(S("ACK,PSH", 101, 301, Full, "hello")))
	p.a.in(p.b.expect1(S("ACK", 301, 106, Full-5, "")))
	buf := make([]byte, 16)
	if n, err := p.b.c.Read(p.k.now, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("B read %q, %v", buf[:n], err)
	}
	if n, _ := p.b.c.Read(p.k.now, buf); n != 0 {
		t.Fatalf("B read %d more bytes", n)
	}
	p.b.c.Write(p.k.now, []byte("world!"))
	p.a.in(p.b.expect1(S("ACK,PSH", 301, 106, Full, "world!")))
	p.b.in(p.a.expect1(S("ACK", 106, 307, Full-6, "")))
	if st := p.a.c.Status(); st.SendQueued != 0 || st.SndUna != 106 || st.Timers[TimerRetransmit] != (time.Time{}) {
		t.Errorf("A still holds acknowledged data or a timer: %+v", st)
	}
	p.a.wantStates(Closed, SynSent, Established)
	p.b.wantStates(Closed, Listen, SynReceived, Established)
}

// closeFromA runs the four-segment close with A closing first and returns
// after B's final ACK has been delivered: A in TIME-WAIT, B CLOSED.
func (p *pair) closeFromA() {
	p.a.t.Helper()
	p.a.c.Close(p.k.now)
	p.a.wantState(FinWait1)
	p.b.in(p.a.expect1(S("FIN,ACK", 101, 301, Full, "")))
	p.b.wantState(CloseWait)
	p.a.in(p.b.expect1(S("ACK", 301, 102, Full, "")))
	p.a.wantState(FinWait2)
	p.b.c.Close(p.k.now)
	p.a.in(p.b.expect1(S("FIN,ACK", 301, 102, Full, "")))
	p.a.wantState(TimeWait)
	p.b.in(p.a.expect1(S("ACK", 102, 302, Full, "")))
	p.b.wantState(Closed)
}

// Scenario 3: the four-segment close. The FIN consumes a sequence number
// like the SYN; the active closer waits 2MSL in TIME-WAIT.
func TestScenarioClose(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	p.closeFromA()
	// TIME-WAIT lasts exactly 2*MSL = 60 s by default.
	if d := p.a.c.Deadline(); d != p.k.now.Add(60*time.Second) {
		t.Fatalf("TIME-WAIT deadline %v, want now+60s", d.Sub(p.k.now))
	}
	p.k.advance(60*time.Second - time.Nanosecond)
	p.a.fire()
	p.a.wantState(TimeWait)
	p.k.advance(time.Nanosecond)
	p.a.fire()
	p.a.wantState(Closed)
	p.a.expectNone()
	p.a.wantStates(Closed, SynSent, Established, FinWait1, FinWait2, TimeWait, Closed)
	p.b.wantStates(Closed, Listen, SynReceived, Established, CloseWait, LastAck, Closed)
	if p.a.c.Err() != nil || p.b.c.Err() != nil {
		t.Errorf("a normal close left errors: %v, %v", p.a.c.Err(), p.b.c.Err())
	}
	if !p.a.c.Deadline().IsZero() {
		t.Error("a CLOSED connection still has a timer")
	}
}

// Scenario 4: half close. After A's FIN, B in CLOSE-WAIT still sends data;
// A in FIN-WAIT-2 receives and acknowledges it, then reads EOF.
func TestScenarioHalfClose(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	p.a.c.Close(p.k.now)
	p.b.in(p.a.expect1(S("FIN,ACK", 101, 301, Full, "")))
	p.a.in(p.b.expect1(S("ACK", 301, 102, Full, "")))
	p.a.wantState(FinWait2)
	p.b.wantState(CloseWait)

	buf := make([]byte, 32)
	if n, err := p.b.c.Read(p.k.now, buf); n != 0 || err != io.EOF {
		t.Fatalf("B's read after A's FIN = %d, %v; want EOF", n, err)
	}
	if n, err := p.b.c.Write(p.k.now, []byte("still talking")); n != 13 || err != nil {
		t.Fatalf("B in CLOSE-WAIT could not write: %d, %v", n, err)
	}
	p.a.in(p.b.expect1(S("ACK,PSH", 301, 102, Full, "still talking")))
	p.b.in(p.a.expect1(S("ACK", 102, 314, Full-13, "")))
	if n, err := p.a.c.Read(p.k.now, buf); string(buf[:n]) != "still talking" || err != nil {
		t.Fatalf("A read %q, %v", buf[:n], err)
	}
	if _, err := p.a.c.Write(p.k.now, []byte("x")); !errors.Is(err, ErrConnectionClosing) {
		t.Fatalf("A wrote after its own CLOSE: %v", err)
	}
	p.b.c.Close(p.k.now)
	p.a.in(p.b.expect1(S("FIN,ACK", 314, 102, Full, "")))
	p.b.in(p.a.expect1(S("ACK", 102, 315, Full, "")))
	if n, err := p.a.c.Read(p.k.now, buf); n != 0 || err != io.EOF {
		t.Fatalf("A's read after B's FIN = %d, %v; want EOF", n, err)
	}
	p.a.wantStates(Closed, SynSent, Established, FinWait1, FinWait2, TimeWait)
	p.b.wantStates(Closed, Listen, SynReceived, Established, CloseWait, LastAck, Closed)
}

// Scenario 5: the peer's ACK of our FIN and its own FIN arrive in one
// segment, so FIN-WAIT-1 goes straight to TIME-WAIT.
func TestScenarioFinAck(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	p.a.c.Close(p.k.now)
	p.b.in(p.a.expect1(S("FIN,ACK", 101, 301, Full, "")))
	p.b.expect1(S("ACK", 301, 102, Full, "")) // lost: A never sees it
	p.b.c.Close(p.k.now)
	p.a.in(p.b.expect1(S("FIN,ACK", 301, 102, Full, "")))
	p.b.in(p.a.expect1(S("ACK", 102, 302, Full, "")))
	p.a.wantStates(Closed, SynSent, Established, FinWait1, TimeWait)
	p.b.wantStates(Closed, Listen, SynReceived, Established, CloseWait, LastAck, Closed)
}

// Scenario 6: simultaneous close. The FINs cross, each side sees the
// other's FIN before the ACK of its own: CLOSING, then TIME-WAIT on both.
func TestScenarioSimultaneousClose(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	p.a.c.Close(p.k.now)
	p.b.c.Close(p.k.now)
	finA := p.a.expect1(S("FIN,ACK", 101, 301, Full, ""))
	finB := p.b.expect1(S("FIN,ACK", 301, 101, Full, ""))
	p.a.in(finB)
	p.b.in(finA)
	p.a.wantState(Closing)
	p.b.wantState(Closing)
	ackA := p.a.expect1(S("ACK", 102, 302, Full, ""))
	ackB := p.b.expect1(S("ACK", 302, 102, Full, ""))
	p.a.in(ackB)
	p.b.in(ackA)
	p.a.expectNone()
	p.b.expectNone()
	p.k.advance(60 * time.Second)
	p.a.fire()
	p.b.fire()
	p.a.wantStates(Closed, SynSent, Established, FinWait1, Closing, TimeWait, Closed)
	p.b.wantStates(Closed, Listen, SynReceived, Established, FinWait1, Closing, TimeWait, Closed)
}

// Scenario 7: the final ACK is lost. B in LAST-ACK retransmits its FIN
// when the RTO expires; A in TIME-WAIT acknowledges it again and restarts
// its 2MSL wait.
func TestScenarioLostFinalAck(t *testing.T) {
	p := newPair(t, Config{})
	p.established()
	p.a.c.Close(p.k.now)
	p.b.in(p.a.expect1(S("FIN,ACK", 101, 301, Full, "")))
	p.a.in(p.b.expect1(S("ACK", 301, 102, Full, "")))
	p.b.c.Close(p.k.now)
	p.a.in(p.b.expect1(S("FIN,ACK", 301, 102, Full, "")))
	p.a.expect1(S("ACK", 102, 302, Full, "")) // lost
	p.a.wantState(TimeWait)

	if d := p.b.c.Deadline(); d != p.k.now.Add(time.Second) {
		t.Fatalf("B's retransmission deadline %v, want the initial RTO of 1s", d.Sub(p.k.now))
	}
	p.k.advance(time.Second)
	p.b.fire()
	p.a.in(p.b.expect1(S("FIN,ACK", 301, 102, Full, "")))
	p.b.in(p.a.expect1(S("ACK", 102, 302, Full, "")))
	p.b.wantState(Closed)
	// The 2MSL wait restarted when the FIN came again.
	if d := p.a.c.Deadline(); d != p.k.now.Add(60*time.Second) {
		t.Fatalf("A's TIME-WAIT deadline %v from now, want 60s", d.Sub(p.k.now))
	}
	p.k.advance(59 * time.Second)
	p.a.fire()
	p.a.wantState(TimeWait) // 60 s after the first FIN, but not after the second
	p.k.advance(time.Second)
	p.a.fire()
	p.a.wantStates(Closed, SynSent, Established, FinWait1, FinWait2, TimeWait, Closed)
	p.b.wantStates(Closed, Listen, SynReceived, Established, CloseWait, LastAck, Closed)
}

// Scenario 8: an old duplicate SYN (RFC 9293 Figure 8). B answers it; A,
// which never sent it, answers the SYN,ACK with RST; B returns to LISTEN
// and the real SYN then opens the connection. No half-open connection is
// left behind.
func TestScenarioOldDuplicateSyn(t *testing.T) {
	p := newPair(t, Config{})
	p.b.c.Listen(p.k.now, 300)
	p.a.c.Connect(p.k.now, 100)
	realSyn := p.a.expect1(S("SYN", 100, 0, Full, "")) // delayed in the network
	p.b.in(S("SYN", 90, 0, Full, ""))                  // an old duplicate arrives first
	p.a.in(p.b.expect1(S("SYN,ACK", 300, 91, Full, "")))
	p.a.wantState(SynSent)
	p.b.in(p.a.expect1(S("RST", 91, 0, 0, "")))
	p.b.wantState(Listen)
	p.b.expectNone()
	if !p.b.c.Deadline().IsZero() {
		t.Fatal("B back in LISTEN still runs a timer for the old SYN")
	}
	p.b.in(realSyn)
	p.a.in(p.b.expect1(S("SYN,ACK", 300, 101, Full, "")))
	p.b.in(p.a.expect1(S("ACK", 101, 301, Full, "")))
	p.a.wantStates(Closed, SynSent, Established)
	p.b.wantStates(Closed, Listen, SynReceived, Listen, SynReceived, Established)
}

// Scenario 8, the article's variant: the old SYN reaches B after A has
// gone. A has no connection, so the SYN,ACK draws a RST for no connection
// (RFC 9293 §3.10.7.1) and B forgets the half-open connection.
func TestScenarioOldDuplicateSynNoClient(t *testing.T) {
	k := &clock{now: t0}
	b := newEnd(t, "B", k, sockB, sockA, Config{})
	b.c.Listen(k.now, 300)
	b.in(S("SYN", 90, 0, Full, ""))
	synack := b.expect1(S("SYN,ACK", 300, 91, Full, ""))
	rst, ok := ResetFor(&synack)
	if !ok || !sameSegment(rst, S("RST", 91, 0, 0, "")) {
		t.Fatalf("a closed port answers the SYN,ACK with %v, %v", fmtSeg(rst), ok)
	}
	b.in(rst)
	b.wantStates(Closed, Listen, SynReceived, Listen)
	b.expectNone()
}

// Scenario 9: simultaneous open (RFC 9293 Figure 7). The SYNs cross; each
// side answers with SYN,ACK and enters SYN-RECEIVED; each SYN,ACK then
// completes the other's handshake.
func TestScenarioSimultaneousOpen(t *testing.T) {
	p := newPair(t, Config{})
	p.a.c.Connect(p.k.now, 100)
	p.b.c.Connect(p.k.now, 300)
	synA := p.a.expect1(S("SYN", 100, 0, Full, ""))
	synB := p.b.expect1(S("SYN", 300, 0, Full, ""))
	p.a.in(synB)
	p.b.in(synA)
	p.a.wantState(SynReceived)
	p.b.wantState(SynReceived)
	synackA := p.a.expect1(S("SYN,ACK", 100, 301, Full, ""))
	synackB := p.b.expect1(S("SYN,ACK", 300, 101, Full, ""))
	p.a.in(synackB)
	p.b.in(synackA)
	p.a.expectNone()
	p.b.expectNone()
	p.a.wantStates(Closed, SynSent, SynReceived, Established)
	p.b.wantStates(Closed, SynSent, SynReceived, Established)
	// And data flows.
	p.a.c.Write(p.k.now, []byte("hi"))
	p.b.in(p.a.expect1(S("ACK,PSH", 101, 301, Full, "hi")))
	p.b.expect1(S("ACK", 301, 103, Full-2, ""))
}

// Scenario 10: the server never gets the last ACK of the handshake. It
// waits in SYN-RECEIVED — what `ipvsadm -lc | grep syn_recv` shows —
// retransmitting its SYN,ACK at 1, 3, 7, 15 and 31 s, and gives up at 63 s
// as Linux does with tcp_synack_retries = 5.
func TestScenarioSynReceivedTimeout(t *testing.T) {
	k := &clock{now: t0}
	b := newEnd(t, "B", k, sockB, sockA, Config{})
	b.c.Listen(k.now, 300)
	b.in(S("SYN", 100, 0, Full, ""))
	b.expect1(S("SYN,ACK", 300, 101, Full, ""))
	for _, at := range []time.Duration{1, 3, 7, 15, 31} {
		if d := b.c.Deadline(); d != t0.Add(at*time.Second) {
			t.Fatalf("retransmission due at %v, want %v", d.Sub(t0), at*time.Second)
		}
		k.now = t0.Add(at * time.Second)
		b.fire()
		b.expect1(S("SYN,ACK", 300, 101, Full, ""))
		b.wantState(SynReceived)
	}
	if d := b.c.Deadline(); d != t0.Add(63*time.Second) {
		t.Fatalf("give-up due at %v, want 63s", d.Sub(t0))
	}
	k.now = t0.Add(63 * time.Second)
	b.fire()
	b.expectNone()
	b.wantStates(Closed, Listen, SynReceived, Closed)
	if !errors.Is(b.c.Err(), ErrTimeout) || !errors.Is(b.c.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("err = %v, want a timeout", b.c.Err())
	}
}
