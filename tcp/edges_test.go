package tcp

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// reach brings a pair to a point where one end, the subject, is in state
// s, asserting every segment on the way. A is the active opener and the
// active closer; B is the passive side.
func reach(t *testing.T, s State, cfg Config) (*pair, *end) {
	t.Helper()
	p := newPair(t, cfg)
	switch s {
	case Listen:
		p.b.c.Listen(p.k.now, 300)
		return p, p.b
	case SynSent:
		p.a.c.Connect(p.k.now, 100)
		p.a.expect1(S("SYN", 100, 0, Full, ""))
		return p, p.a
	case SynReceived:
		p.b.c.Listen(p.k.now, 300)
		p.b.in(S("SYN", 100, 0, Full, ""))
		p.b.expect1(S("SYN,ACK", 300, 101, Full, ""))
		return p, p.b
	}
	p.established()
	switch s {
	case Established:
		return p, p.a
	case FinWait1:
		p.a.c.Close(p.k.now)
		p.a.expect1(S("FIN,ACK", 101, 301, Full, ""))
		return p, p.a
	case FinWait2, CloseWait:
		p.a.c.Close(p.k.now)
		p.b.in(p.a.expect1(S("FIN,ACK", 101, 301, Full, "")))
		p.a.in(p.b.expect1(S("ACK", 301, 102, Full, "")))
		if s == FinWait2 {
			return p, p.a
		}
		return p, p.b
	case Closing:
		p.a.c.Close(p.k.now)
		p.b.c.Close(p.k.now)
		p.a.take()
		p.a.in(p.b.expect1(S("FIN,ACK", 301, 101, Full, "")))
		p.a.expect1(S("ACK", 102, 302, Full, ""))
		return p, p.a
	case LastAck:
		p.a.c.Close(p.k.now)
		p.b.in(p.a.expect1(S("FIN,ACK", 101, 301, Full, "")))
		p.a.in(p.b.expect1(S("ACK", 301, 102, Full, "")))
		p.b.c.Close(p.k.now)
		p.b.expect1(S("FIN,ACK", 301, 102, Full, ""))
		return p, p.b
	case TimeWait:
		p.closeFromA()
		return p, p.a
	}
	t.Fatalf("cannot reach %v", s)
	return nil, nil
}

// rcvNxt and sndNxt of the subject, for building segments that hit it.
func rcvNxt(e *end) uint32 { return uint32(e.c.Status().RcvNxt) }
func sndNxt(e *end) uint32 { return uint32(e.c.Status().SndNxt) }

// TestResetInEachState: an RST at exactly RCV.NXT closes a synchronized
// connection (RFC 9293 §3.10.7.4, second step; RFC 5961 §3.2), with
// "connection reset" where the user still had a connection to use.
func TestResetInEachState(t *testing.T) {
	cases := []struct {
		s   State
		err error
	}{
		{Established, ErrConnectionReset},
		{FinWait1, ErrConnectionReset},
		{FinWait2, ErrConnectionReset},
		{CloseWait, ErrConnectionReset},
		{Closing, nil},
		{LastAck, nil},
		{TimeWait, nil},
	}
	for _, tc := range cases {
		t.Run(tc.s.String(), func(t *testing.T) {
			_, e := reach(t, tc.s, Config{})
			e.in(S("RST", rcvNxt(e), 0, 0, ""))
			e.expectNone()
			e.wantState(Closed)
			if !errors.Is(e.c.Err(), tc.err) && e.c.Err() != tc.err {
				t.Fatalf("err = %v, want %v", e.c.Err(), tc.err)
			}
			if tc.err == ErrConnectionReset && !errors.Is(e.c.Err(), syscall.ECONNRESET) {
				t.Fatal("a reset does not match syscall.ECONNRESET")
			}
			if _, err := e.c.Read(e.k.now, make([]byte, 1)); tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("Read after reset = %v, want %v", err, tc.err)
			}
			if !e.c.Deadline().IsZero() {
				t.Fatal("timers survive the reset")
			}
		})
	}
}

// TestResetNotExactDrawsChallengeAck: an RST inside the window but not at
// RCV.NXT gets a challenge ACK and changes nothing (RFC 5961 §3.2); one
// outside the window is dropped silently.
func TestResetNotExactDrawsChallengeAck(t *testing.T) {
	p, a := reach(t, Established, Config{})
	a.in(S("RST", 305, 0, 0, ""))
	a.expect1(S("ACK", 101, 301, Full, ""))
	a.wantState(Established)
	a.in(S("RST", 301+100000, 0, 0, ""))
	a.expectNone()
	a.wantState(Established)
	_ = p
}

// TestResetInTimeWaitRFC1337: with RFC1337 set, TIME-WAIT ignores RST and
// waits out its 2MSL.
func TestResetInTimeWaitRFC1337(t *testing.T) {
	_, a := reach(t, TimeWait, Config{RFC1337: true})
	a.in(S("RST", rcvNxt(a), 0, 0, ""))
	a.expectNone()
	a.wantState(TimeWait)
}

// TestAbortInEachState: ABORT sends <SEQ=SND.NXT><CTL=RST> from the states
// where the peer holds a connection, and just deletes the TCB elsewhere
// (RFC 9293 §3.10.5).
func TestAbortInEachState(t *testing.T) {
	cases := []struct {
		s   State
		rst bool
	}{
		{Listen, false}, {SynSent, false}, {SynReceived, true},
		{Established, true}, {FinWait1, true}, {FinWait2, true}, {CloseWait, true},
		{Closing, false}, {LastAck, false}, {TimeWait, false},
	}
	for _, tc := range cases {
		t.Run(tc.s.String(), func(t *testing.T) {
			_, e := reach(t, tc.s, Config{})
			next := sndNxt(e)
			if err := e.c.Abort(e.k.now); err != nil {
				t.Fatal(err)
			}
			if tc.rst {
				e.expect1(S("RST", next, 0, 0, ""))
			} else {
				e.expectNone()
			}
			e.wantState(Closed)
			if err := e.c.Abort(e.k.now); err == nil {
				t.Fatal("a second ABORT succeeded")
			}
		})
	}
}

// TestRetransmissionGivesUp: data, SYN or FIN that is never acknowledged is
// retransmitted with a doubling RTO, and the connection then ends with a
// timeout (RFC 9293 §3.8.3, RFC 6298 §5.5).
func TestRetransmissionGivesUp(t *testing.T) {
	cfg := Config{DataRetries: 2, SynRetries: 2}
	cases := []struct {
		s     State
		write bool    // queue data first (FIN states have their FIN outstanding)
		rtx   Segment // what each retransmission carries
	}{
		{SynSent, false, S("SYN", 100, 0, Full, "")},
		{Established, true, S("ACK,PSH", 101, 301, Full, "data")},
		{CloseWait, true, S("ACK,PSH", 301, 102, Full, "data")},
		{FinWait1, false, S("FIN,ACK", 101, 301, Full, "")},
		{Closing, false, S("FIN,ACK", 101, 302, Full, "")},
		{LastAck, false, S("FIN,ACK", 301, 102, Full, "")},
	}
	for _, tc := range cases {
		t.Run(tc.s.String(), func(t *testing.T) {
			p, e := reach(t, tc.s, cfg)
			start := p.k.now
			if tc.write {
				e.c.Write(p.k.now, []byte("data"))
				e.expect1(tc.rtx)
			}
			// Retransmissions at 1 s and 3 s, the give-up at 7 s.
			for _, at := range []time.Duration{1, 3} {
				if d := e.c.Deadline(); d != start.Add(at*time.Second) {
					t.Fatalf("next retransmission at %v, want %v", d.Sub(start), at*time.Second)
				}
				p.k.now = start.Add(at * time.Second)
				e.fire()
				e.expect1(tc.rtx)
			}
			p.k.now = start.Add(7 * time.Second)
			e.fire()
			e.expectNone()
			e.wantState(Closed)
			if !errors.Is(e.c.Err(), ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", e.c.Err())
			}
			var ne interface{ Timeout() bool }
			if !errors.As(e.c.Err(), &ne) || !ne.Timeout() {
				t.Fatal("the timeout error does not say Timeout() = true")
			}
		})
	}
}

// TestUserTimeout: with a user timeout, data unacknowledged for that long
// aborts the connection (RFC 9293 §3.10.8, RFC 5482), however many
// retransmissions remain.
func TestUserTimeout(t *testing.T) {
	p, a := reach(t, Established, Config{UserTimeout: 5 * time.Second})
	start := p.k.now
	a.c.Write(p.k.now, []byte("x"))
	a.take()
	for a.c.State() == Established {
		p.k.now = a.c.Deadline()
		a.fire()
		a.take()
	}
	if got := p.k.now.Sub(start); got != 5*time.Second {
		t.Fatalf("aborted after %v, want 5s", got)
	}
	if !errors.Is(a.c.Err(), ErrUserTimeout) {
		t.Fatalf("err = %v", a.c.Err())
	}
}

// TestUserTimeoutRestartsOnProgress: an acknowledgment of new data
// restarts the user timeout.
func TestUserTimeoutRestartsOnProgress(t *testing.T) {
	p, a := reach(t, Established, Config{UserTimeout: 5 * time.Second})
	a.c.Write(p.k.now, []byte("x"))
	a.take()
	p.k.advance(4 * time.Second)
	a.c.Write(p.k.now, []byte("y"))
	a.take()
	a.in(S("ACK", 301, 102, Full, ""))
	p.k.advance(4 * time.Second)
	a.fire()
	a.take()
	a.wantState(Established)
}

// TestCloseFromListenAndSynSent: CLOSE in LISTEN or SYN-SENT deletes the
// TCB without a word to the peer (RFC 9293 §3.10.4).
func TestCloseFromListenAndSynSent(t *testing.T) {
	for _, s := range []State{Listen, SynSent} {
		t.Run(s.String(), func(t *testing.T) {
			_, e := reach(t, s, Config{})
			if err := e.c.Close(e.k.now); err != nil {
				t.Fatal(err)
			}
			e.expectNone()
			e.wantState(Closed)
		})
	}
}

// TestSendFromListen: SEND on a listening connection whose foreign socket
// is known turns it active: SYN, SYN-SENT (RFC 9293 §3.10.2).
func TestSendFromListen(t *testing.T) {
	p, b := reach(t, Listen, Config{})
	if n, err := b.c.Write(p.k.now, []byte("early")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	p.a.c.Listen(p.k.now, 100)
	p.a.in(b.expect1(S("SYN", 300, 0, Full, "")))
	b.wantState(SynSent)
	b.in(p.a.expect1(S("SYN,ACK", 100, 301, Full, "")))
	// The queued data rides on the handshake's ACK.
	b.expect1(S("ACK,PSH", 301, 101, Full, "early"))
	b.wantStates(Closed, Listen, SynSent, Established)
}

// TestCloseInSynReceived: CLOSE in SYN-RECEIVED with nothing queued sends
// FIN and enters FIN-WAIT-1; with data queued it waits for ESTABLISHED.
func TestCloseInSynReceived(t *testing.T) {
	t.Run("nothing queued", func(t *testing.T) {
		_, b := reach(t, SynReceived, Config{})
		b.c.Close(b.k.now)
		b.expect1(S("FIN,ACK", 301, 101, Full, ""))
		b.wantState(FinWait1)
		// The ACK of the SYN and the FIN together: FIN-WAIT-2.
		b.in(S("ACK", 101, 302, Full, ""))
		b.wantStates(Closed, Listen, SynReceived, FinWait1, FinWait2)
	})
	t.Run("data queued", func(t *testing.T) {
		_, b := reach(t, SynReceived, Config{})
		b.c.Write(b.k.now, []byte("bye"))
		b.c.Close(b.k.now)
		b.expectNone()
		b.wantState(SynReceived)
		b.in(S("ACK", 101, 301, Full, ""))
		b.expect1(S("ACK,PSH,FIN", 301, 101, Full, "bye"))
		b.wantStates(Closed, Listen, SynReceived, Established, FinWait1)
	})
}

// TestSynReceivedRstFromPassiveOpen: an RST in SYN-RECEIVED that came from
// a passive open returns the connection to LISTEN (RFC 9293 §3.10.7.4).
func TestSynReceivedRstFromPassiveOpen(t *testing.T) {
	_, b := reach(t, SynReceived, Config{})
	b.in(S("RST", 101, 0, 0, ""))
	b.expectNone()
	b.wantStates(Closed, Listen, SynReceived, Listen)
	if b.c.Err() != nil {
		t.Fatalf("the user was told: %v", b.c.Err())
	}
	// And it can take the next SYN.
	b.in(S("SYN", 500, 0, Full, ""))
	b.expect1(S("SYN,ACK", 300, 501, Full, ""))
}

// TestSynReceivedRstFromActiveOpen: in a simultaneous open the SYN-RECEIVED
// side came from SYN-SENT; an RST there is a refusal.
func TestSynReceivedRstFromActiveOpen(t *testing.T) {
	p := newPair(t, Config{})
	p.a.c.Connect(p.k.now, 100)
	p.a.take()
	p.a.in(S("SYN", 300, 0, Full, ""))
	p.a.expect1(S("SYN,ACK", 100, 301, Full, ""))
	p.a.in(S("RST", 301, 0, 0, ""))
	p.a.wantStates(Closed, SynSent, SynReceived, Closed)
	if !errors.Is(p.a.c.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", p.a.c.Err())
	}
}

// TestSynReceivedSynInWindow: a new SYN inside the window of a passively
// opened SYN-RECEIVED connection sends it back to LISTEN (RFC 9293
// §3.10.7.4, fourth step).
func TestSynReceivedSynInWindow(t *testing.T) {
	_, b := reach(t, SynReceived, Config{})
	b.in(S("SYN", 150, 0, Full, ""))
	b.expectNone()
	b.wantStates(Closed, Listen, SynReceived, Listen)
}

// TestSynReceivedDuplicateSyn: the peer's SYN again means our SYN,ACK was
// lost; answer it with the SYN,ACK.
func TestSynReceivedDuplicateSyn(t *testing.T) {
	_, b := reach(t, SynReceived, Config{})
	b.in(S("SYN", 100, 0, Full, ""))
	b.expect1(S("SYN,ACK", 300, 101, Full, ""))
	b.wantState(SynReceived)
}

// TestSynReceivedBadAck: an ACK that does not acknowledge our SYN gets
// <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.4, fifth step).
func TestSynReceivedBadAck(t *testing.T) {
	_, b := reach(t, SynReceived, Config{})
	b.in(S("ACK", 101, 999, Full, ""))
	b.expect1(S("RST", 999, 0, 0, ""))
	b.wantState(SynReceived)
}

// TestSynSentUnacceptableAck: in SYN-SENT, an ACK that does not cover our
// SYN gets <SEQ=SEG.ACK><CTL=RST> and is dropped (RFC 9293 §3.10.7.3).
func TestSynSentUnacceptableAck(t *testing.T) {
	_, a := reach(t, SynSent, Config{})
	a.in(S("ACK", 555, 50, Full, ""))
	a.expect1(S("RST", 50, 0, 0, ""))
	a.in(S("SYN,ACK", 555, 100, Full, "")) // SEG.ACK = ISS: also unacceptable
	a.expect1(S("RST", 100, 0, 0, ""))
	a.in(S("RST,ACK", 555, 7, 0, "")) // an RST with a bad ACK is just dropped
	a.expectNone()
	a.wantState(SynSent)
}

// TestSynSentRefused: an RST with an acceptable ACK in SYN-SENT aborts the
// open: connection refused, which Go programs know as ECONNREFUSED.
func TestSynSentRefused(t *testing.T) {
	_, a := reach(t, SynSent, Config{})
	a.in(S("RST", 0, 0, 0, "")) // no ACK: cannot be checked, dropped
	a.wantState(SynSent)
	a.in(S("RST,ACK", 0, 101, 0, ""))
	a.expectNone()
	a.wantStates(Closed, SynSent, Closed)
	if !errors.Is(a.c.Err(), ErrConnectionRefused) || !errors.Is(a.c.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want connection refused", a.c.Err())
	}
	if _, err := a.c.Write(a.k.now, []byte("x")); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Write after refusal = %v", err)
	}
}

// TestSynSentNeitherSynNorRst: "if neither of the SYN or RST bits is set,
// then drop the segment and return".
func TestSynSentNeitherSynNorRst(t *testing.T) {
	_, a := reach(t, SynSent, Config{})
	a.in(S("ACK", 555, 101, Full, ""))
	a.expectNone()
	a.wantState(SynSent)
}

// TestSynInSynchronizedStateChallengeAck: a SYN in a synchronized state,
// whatever its sequence number, gets a challenge ACK and is dropped
// (RFC 9293 §3.10.7.4 fourth step, RFC 5961 §4.2).
func TestSynInSynchronizedStateChallengeAck(t *testing.T) {
	for _, s := range []State{Established, FinWait2, CloseWait} {
		t.Run(s.String(), func(t *testing.T) {
			_, e := reach(t, s, Config{})
			want := S("ACK", sndNxt(e), rcvNxt(e), Full, "")
			e.in(S("SYN", rcvNxt(e)+10, 0, Full, "")) // in the window
			e.expect1(want)
			e.in(S("SYN", rcvNxt(e)-1000, 0, Full, "")) // outside it
			e.expect1(want)
			e.wantState(s)
		})
	}
}

// TestAckOfUnsentData: an ACK for something not yet sent is answered with
// an ACK and the segment, data included, is dropped (RFC 9293 §3.10.7.4
// fifth step).
func TestAckOfUnsentData(t *testing.T) {
	_, a := reach(t, Established, Config{})
	a.in(S("ACK,PSH", 301, 500, Full, "ghost"))
	a.expect1(S("ACK", 101, 301, Full, ""))
	if a.c.Readable() != 0 {
		t.Fatal("data of a dropped segment was delivered")
	}
	a.wantState(Established)
}

// TestOutOfWindow: a segment outside the receive window is answered with an
// ACK and dropped (RFC 9293 §3.10.7.4 first step), including an old
// duplicate of data already received.
func TestOutOfWindow(t *testing.T) {
	_, a := reach(t, Established, Config{})
	a.in(S("ACK,PSH", 301+70000, 101, Full, "far"))
	a.expect1(S("ACK", 101, 301, Full, ""))
	a.in(S("ACK,PSH", 301, 101, Full, "abc"))
	a.expect1(S("ACK", 101, 304, Full-3, ""))
	a.in(S("ACK,PSH", 301, 101, Full, "abc")) // the same again: old
	a.expect1(S("ACK", 101, 304, Full-3, ""))
	if a.c.Readable() != 3 {
		t.Fatalf("%d bytes readable, want 3", a.c.Readable())
	}
}

// TestOverlapTrimmed: "If a segment's contents straddle the boundary
// between old and new, only the new parts are processed."
func TestOverlapTrimmed(t *testing.T) {
	_, a := reach(t, Established, Config{})
	a.in(S("ACK", 301, 101, Full, "abc"))
	a.take()
	a.in(S("ACK", 302, 101, Full, "bcdef"))
	a.expect1(S("ACK", 101, 307, Full-6, ""))
	buf := make([]byte, 10)
	n, _ := a.c.Read(a.k.now, buf)
	if string(buf[:n]) != "abcdef" {
		t.Fatalf("read %q", buf[:n])
	}
}

// TestOutOfOrderDropped: data beyond RCV.NXT is not held by this TCB; the
// ACK it draws names the hole, and a FIN beyond the hole is not taken.
func TestOutOfOrderDropped(t *testing.T) {
	_, a := reach(t, Established, Config{})
	a.in(S("ACK,FIN", 305, 101, Full, "later"))
	a.expect1(S("ACK", 101, 301, Full, ""))
	a.wantState(Established)
	if a.c.Readable() != 0 || a.c.ReadClosed() {
		t.Fatal("out-of-order data or FIN was taken")
	}
}

// TestNoAckBitDropped: in a synchronized state a segment without ACK is
// dropped (RFC 9293 §3.10.7.4 fifth step).
func TestNoAckBitDropped(t *testing.T) {
	_, a := reach(t, Established, Config{})
	a.in(S("PSH", 301, 0, Full, "noack"))
	a.expectNone()
	if a.c.Readable() != 0 {
		t.Fatal("data without ACK was delivered")
	}
}

// TestListenRules: in LISTEN an RST is ignored, an ACK draws an RST, and
// anything else without SYN is dropped (RFC 9293 §3.10.7.2).
func TestListenRules(t *testing.T) {
	_, b := reach(t, Listen, Config{})
	b.in(S("RST", 5, 0, 0, ""))
	b.expectNone()
	b.in(S("ACK", 5, 77, Full, ""))
	b.expect1(S("RST", 77, 0, 0, ""))
	b.in(S("FIN", 5, 0, Full, ""))
	b.expectNone()
	b.wantStates(Closed, Listen)
}

// TestClosedAnswersReset: a CLOSED connection answers as RFC 9293
// §3.10.7.1 says, and ResetFor gives the same answers.
func TestClosedAnswersReset(t *testing.T) {
	k := &clock{now: t0}
	e := newEnd(t, "X", k, sockA, sockB, Config{})
	e.in(S("SYN", 1000, 0, Full, "abc"))
	e.expect1(S("RST,ACK", 0, 1004, 0, "")) // SEG.SEQ+SEG.LEN: SYN and 3 bytes
	e.in(S("ACK", 1000, 2000, Full, ""))
	e.expect1(S("RST", 2000, 0, 0, ""))
	e.in(S("RST", 1000, 0, 0, ""))
	e.expectNone()
}

// TestZeroWindowProbe: a receiver with a full buffer advertises a zero
// window; the sender probes it with one byte when the RTO expires, the
// receiver answers without taking the byte, and once the reader drains the
// buffer a window update reopens the flow (RFC 9293 §3.8.6.1, §3.8.6.2.2).
func TestZeroWindowProbe(t *testing.T) {
	p := newPair(t, Config{ReceiveBuffer: 8, MSS: 4})
	p.b.c.Listen(p.k.now, 300)
	p.a.c.Connect(p.k.now, 100)
	p.b.in(p.a.expect1(S("SYN", 100, 0, 8, "")))
	p.a.in(p.b.expect1(S("SYN,ACK", 300, 101, 8, "")))
	p.b.in(p.a.expect1(S("ACK", 101, 301, 8, "")))
	p.a.c.Write(p.k.now, []byte("0123456789AB"))
	// Two MSS-sized segments fill B's 8-byte window.
	sent := p.a.expect(S("ACK", 101, 301, 8, "0123"), S("ACK", 105, 301, 8, "4567"))
	p.b.in(sent[0])
	p.a.in(p.b.expect1(S("ACK", 301, 105, 4, "")))
	p.b.in(sent[1])
	p.a.in(p.b.expect1(S("ACK", 301, 109, 0, "")))
	p.a.expectNone()
	// The window is shut and nothing is in flight: the persist timer
	// probes with an old sequence number, which B must answer.
	if d := p.a.c.Deadline(); d != p.k.now.Add(time.Second) || !p.a.c.Status().Timers[TimerPersist].Equal(d) {
		t.Fatalf("persist timer at %v, want one RTO from now", d.Sub(p.k.now))
	}
	p.k.now = p.a.c.Deadline()
	p.a.fire()
	p.b.in(p.a.expect1(S("ACK", 108, 301, 8, "")))
	p.a.in(p.b.expect1(S("ACK", 301, 109, 0, ""))) // still shut
	// The next probe waits twice as long.
	if d := p.a.c.Deadline(); d != p.k.now.Add(2*time.Second) {
		t.Fatalf("second probe in %v, want 2s", d.Sub(p.k.now))
	}
	// The reader drains the buffer: B announces the open window.
	buf := make([]byte, 8)
	if n, _ := p.b.c.Read(p.k.now, buf); n != 8 {
		t.Fatalf("read %d", n)
	}
	p.a.in(p.b.expect1(S("ACK", 301, 109, 8, "")))
	p.b.in(p.a.expect1(S("ACK,PSH", 109, 301, 8, "89AB")))
	p.a.in(p.b.expect1(S("ACK", 301, 113, 4, "")))
	if p.a.c.SendQueued() != 0 || !p.a.c.Deadline().IsZero() {
		t.Fatalf("A still has %d bytes queued or a timer running", p.a.c.SendQueued())
	}
}

// TestRetransmitGoesBack: after an RTO the sender resends from the first
// unacknowledged byte with a congestion window of one segment (RFC 5681
// §3.1); the receiver, which kept the out-of-order segment, acknowledges
// past it, and slow start resends the rest.
func TestRetransmitGoesBack(t *testing.T) {
	p := newPair(t, Config{MSS: 4})
	p.established()
	p.a.c.Write(p.k.now, []byte("aaaabbbbcc"))
	sent := p.a.expect(S("ACK", 101, 301, Full, "aaaa"), S("ACK", 105, 301, Full, "bbbb"), S("ACK,PSH", 109, 301, Full, "cc"))
	// The first and the last are lost; B keeps "bbbb" out of order.
	p.b.in(sent[1])
	p.a.in(p.b.expect1(S("ACK", 301, 101, Full, "")))
	p.k.advance(time.Second)
	p.a.fire()
	p.b.in(p.a.expect1(S("ACK", 101, 301, Full, "aaaa")))
	// "aaaa" fills the hole: B delivers both and acknowledges 109 at once.
	p.a.in(p.b.expect1(S("ACK", 301, 109, Full-8, "")))
	p.b.in(p.a.expect1(S("ACK,PSH", 109, 301, Full, "cc")))
	p.a.in(p.b.expect1(S("ACK", 301, 111, Full-10, "")))
	buf := make([]byte, 16)
	if n, _ := p.b.c.Read(p.k.now, buf); string(buf[:n]) != "aaaabbbbcc" {
		t.Fatalf("B read %q", buf[:n])
	}
	if st := p.a.c.Status(); st.Retransmits != 0 || st.SendQueued != 0 {
		t.Fatalf("backoff not reset by new ACK or data left: %+v", st)
	}
}

// TestDataBeforeEstablished: data written in SYN-SENT waits for the
// handshake and leaves with the ACK that completes it.
func TestDataBeforeEstablished(t *testing.T) {
	p := newPair(t, Config{})
	p.b.c.Listen(p.k.now, 300)
	p.a.c.Connect(p.k.now, 100)
	p.a.c.Write(p.k.now, []byte("early"))
	p.b.in(p.a.expect1(S("SYN", 100, 0, Full, "")))
	p.a.in(p.b.expect1(S("SYN,ACK", 300, 101, Full, "")))
	p.b.in(p.a.expect1(S("ACK,PSH", 101, 301, Full, "early")))
	p.b.expect1(S("ACK", 301, 106, Full-5, ""))
	p.b.wantState(Established)
}

// TestSequenceWrap: a connection whose sequence numbers cross 2^32 works
// like any other.
func TestSequenceWrap(t *testing.T) {
	p := newPair(t, Config{MSS: 8})
	p.b.c.Listen(p.k.now, 0xFFFFFFFA)
	p.a.c.Connect(p.k.now, 0xFFFFFFFE)
	p.b.in(p.a.expect1(S("SYN", 0xFFFFFFFE, 0, Full, "")))
	p.a.in(p.b.expect1(S("SYN,ACK", 0xFFFFFFFA, 0xFFFFFFFF, Full, "")))
	p.b.in(p.a.expect1(S("ACK", 0xFFFFFFFF, 0xFFFFFFFB, Full, "")))
	p.a.c.Write(p.k.now, []byte("0123456789"))
	sent := p.a.expect(S("ACK", 0xFFFFFFFF, 0xFFFFFFFB, Full, "01234567"), S("ACK,PSH", 7, 0xFFFFFFFB, Full, "89"))
	p.b.in(sent[0])
	p.b.in(sent[1])
	p.a.in(p.b.expect(S("ACK", 0xFFFFFFFB, 7, Full-8, ""), S("ACK", 0xFFFFFFFB, 9, Full-10, ""))[1])
	p.b.c.Write(p.k.now, []byte("wrapwrap!"))
	p.a.in(p.b.expect(S("ACK", 0xFFFFFFFB, 9, Full-10, "wrapwrap"), S("ACK,PSH", 3, 9, Full-10, "!"))[1])
	p.a.expect1(S("ACK", 9, 0xFFFFFFFB, Full, "")) // out of order: the first was not delivered
	if p.a.c.SendQueued() != 0 {
		t.Fatal("A's data across the wrap was not acknowledged")
	}
}

// TestUrgentPointer: URG advances RCV.UP and the user is told there is
// urgent data (RFC 9293 §3.10.7.4 sixth step).
func TestUrgentPointer(t *testing.T) {
	_, a := reach(t, Established, Config{})
	s := S("ACK,URG", 301, 101, Full, "!!")
	s.Urgent = 2
	a.in(s)
	if !a.c.Status().UrgentQueued {
		t.Fatal("urgent data not signalled")
	}
}

// TestUserCallErrors: calls in the wrong state return the RFC's errors.
func TestUserCallErrors(t *testing.T) {
	p := newPair(t, Config{})
	if _, err := p.a.c.Write(p.k.now, []byte("x")); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Write on CLOSED = %v", err)
	}
	if err := p.a.c.Close(p.k.now); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Close on CLOSED = %v", err)
	}
	p.established()
	if err := p.a.c.Connect(p.k.now, 1); !errors.Is(err, ErrConnectionExists) {
		t.Errorf("second OPEN = %v", err)
	}
	if err := p.a.c.Listen(p.k.now, 1); !errors.Is(err, ErrConnectionExists) {
		t.Errorf("OPEN on an open connection = %v", err)
	}
	p.a.c.Close(p.k.now)
	if err := p.a.c.Close(p.k.now); !errors.Is(err, ErrConnectionClosing) {
		t.Errorf("second CLOSE = %v", err)
	}
	if n, err := p.a.c.Read(p.k.now, make([]byte, 1)); n != 0 || err != nil {
		t.Errorf("Read with nothing yet = %d, %v", n, err)
	}
	k := &clock{now: t0}
	e := newEnd(t, "X", k, sockA, netipZero(), Config{})
	if err := e.c.Connect(k.now, 1); !errors.Is(err, ErrForeignUnspecified) {
		t.Errorf("Connect without a foreign socket = %v", err)
	}
}

func netipZero() netip.AddrPort { return netip.AddrPort{} }

// TestResumeFromCookie: a listener that answered a SYN with a cookie and
// kept nothing takes the returning ACK as the end of the handshake
// (RFC 4987 §3.6), with the MSS the cookie carried and no other options.
func TestResumeFromCookie(t *testing.T) {
	k := &clock{now: t0}
	b := newEnd(t, "B", k, sockB, sockA, Config{})
	b.c.Listen(k.now, 777)
	ack := S("ACK,PSH", 101, 778, 4000, "hi")
	if err := b.c.ResumeFromCookie(k.now, &ack, 1200); err != nil {
		t.Fatal(err)
	}
	b.wantStates(Closed, Listen, SynReceived, Established)
	b.expect1(S("ACK", 778, 103, Full-2, ""))
	if st := b.c.Status(); st.SndMSS != 1200 || st.SndWnd != 4000 || st.IRS != 100 {
		t.Fatalf("TCB from the cookie: %+v", st)
	}
	// A cookie that does not match the ISS is refused.
	k2 := &clock{now: t0}
	c := newEnd(t, "C", k2, sockB, sockA, Config{})
	c.c.Listen(k2.now, 777)
	bad := S("ACK", 101, 999, 4000, "")
	if err := c.c.ResumeFromCookie(k2.now, &bad, 1200); err == nil {
		t.Fatal("a wrong cookie was taken")
	}
	c.wantState(Listen)
}

// TestReopenFromTimeWait: a SYN beyond RCV.NXT (or with a newer
// timestamp) may reopen a connection in TIME-WAIT (RFC 6191); an old one
// may not.
func TestReopenFromTimeWait(t *testing.T) {
	_, a := reach(t, TimeWait, Config{})
	old := S("SYN", rcvNxt(a)-10, 0, Full, "")
	newer := S("SYN", rcvNxt(a)+100000, 0, Full, "")
	if a.c.ReopenAllowed(&old) || !a.c.ReopenAllowed(&newer) {
		t.Fatal("RFC 6191's sequence rule not applied")
	}
	synack := S("SYN,ACK", rcvNxt(a)+100000, 5, Full, "")
	if a.c.ReopenAllowed(&synack) {
		t.Fatal("a SYN,ACK reopened TIME-WAIT")
	}
}

// TestFailInSynSent: the runtime ends an opening connection on an ICMP
// hard error with the error it chooses, sending nothing.
func TestFailInSynSent(t *testing.T) {
	_, a := reach(t, SynSent, Config{})
	a.c.Fail(a.k.now, ErrConnectionRefused)
	a.expectNone()
	a.wantStates(Closed, SynSent, Closed)
	if !errors.Is(a.c.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("err %v", a.c.Err())
	}
}
