package tcp

import (
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// FuzzConn feeds a connection an arbitrary sequence of user calls,
// segments and clock ticks, decoded from the fuzzer's bytes, and checks
// after every step that it has not panicked and that its TCB is sane.
// Segment numbers are drawn near the connection's own variables so the
// fuzzer reaches deep states instead of bouncing off the window check.
func FuzzConn(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 0x12, 0, 0, 0, 0x10, 1, 0, 0, 0x11, 5, 2, 3})
	f.Add([]byte{0, 0x02, 0, 0, 0x10, 0x10, 0, 3, 4, 0x01, 0x11, 7, 7, 7, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		k := &clock{now: t0}
		cfg := &Config{ReceiveBuffer: 64, SendBuffer: 64, MSS: 48}
		if len(ops)%2 == 1 {
			cfg.CongestionControl = "bbr" // delivery-rate samples and pacing too
		}
		c := NewConn(Tuple{Local: sockA, Remote: sockB}, cfg, &checkOut{t: t})
		c.out.(*checkOut).c = c
		buf := make([]byte, 32)
		for len(ops) >= 3 {
			op, a, b := ops[0], ops[1], ops[2]
			ops = ops[3:]
			switch op % 8 {
			case 0:
				c.Listen(k.now, 1000)
			case 1:
				c.Connect(k.now, 1000)
			case 2:
				c.Write(k.now, buf[:a%32])
			case 3:
				c.Read(k.now, buf[:b%32])
			case 4:
				c.Close(k.now)
			case 5:
				if a == 0 {
					c.Abort(k.now)
				}
			case 6:
				k.advance(time.Duration(a) * 100 * time.Millisecond)
				c.HandleTimeout(k.now)
			case 7:
				seg := Segment{
					Flags:  header.TCPFlags(a),
					Window: uint16(b) * 16,
				}
				// Numbers near the connection's own, or near the other
				// side's ISS of 5000.
				st := c.Status()
				base := st.RcvNxt
				if st.RcvNxt == 0 {
					base = 5000
				}
				seg.Seq = base.Add(seqnum.Size(int8(b))) // -128..127 around it
				seg.Ack = st.SndUna.Add(seqnum.Size(a % 8))
				if len(ops) > 0 {
					n := int(ops[0] % 24)
					ops = ops[1:]
					seg.Payload = buf[:n]
				}
				// Options: the SYN's offers, timestamps, SACK blocks
				// around what was sent.
				if len(ops) > 0 {
					o := ops[0]
					ops = ops[1:]
					seg.Options.HasMSS, seg.Options.MSS = o&1 != 0, uint16(o)
					seg.Options.HasWindowScale, seg.Options.WindowScale = o&2 != 0, o%16
					seg.Options.SACKPermitted = o&4 != 0
					seg.Options.HasTimestamps, seg.Options.TSVal = o&8 != 0, uint32(k.now.UnixMilli())-uint32(o>>4)
					if o&16 != 0 {
						left := st.SndUna.Add(seqnum.Size(o % 32))
						seg.Options.SACKBlocks[0] = header.SACKBlock{Left: left, Right: left.Add(seqnum.Size(b % 40))}
						seg.Options.NumSACK = 1
					}
				}
				c.Input(k.now, &seg)
			}
			checkInvariants(t, c)
		}
	})
}

type checkOut struct {
	t *testing.T
	c *Conn
}

// Send checks what the connection sends: never data beyond the peer's
// window but for a one-byte probe, never more than the MSS, never an ACK
// of data not received.
func (o *checkOut) Send(c *Conn, seg *Segment) {
	if len(seg.Payload) > c.sndMSS {
		o.t.Fatalf("sent %d bytes, MSS %d", len(seg.Payload), c.sndMSS)
	}
	if seg.Flags&header.RST != 0 || len(seg.Payload) == 0 {
		return
	}
	end := seg.Seq.Add(seqnum.Size(len(seg.Payload)))
	wndEnd := c.sndWndEnd()
	if wndEnd.LessThan(end) && len(seg.Payload) > 1 {
		o.t.Fatalf("sent %v beyond the peer's window ending at %d", seg, wndEnd)
	}
	if seg.Flags&header.ACK != 0 && seg.Ack != c.rcvNxt {
		o.t.Fatalf("acknowledged %d, RCV.NXT is %d", seg.Ack, c.rcvNxt)
	}
}

func checkInvariants(t *testing.T, c *Conn) {
	t.Helper()
	if int(c.state) >= NumStates {
		t.Fatalf("state %d", c.state)
	}
	if c.state == Closed || c.state == Listen {
		return
	}
	if c.sndNxt.LessThan(c.sndUna) {
		t.Fatalf("SND.NXT %d before SND.UNA %d", c.sndNxt, c.sndUna)
	}
	if c.rtxNxt.LessThan(c.sndUna) || c.sndNxt.LessThan(c.rtxNxt) {
		t.Fatalf("resend point %d outside [SND.UNA %d, SND.NXT %d]", c.rtxNxt, c.sndUna, c.sndNxt)
	}
	if c.snd.len() > c.snd.capacity() || c.rcv.len() > c.rcv.capacity() {
		t.Fatal("a queue holds more than its size")
	}
	if c.finQueued && c.dataEnd() != c.finSeq {
		t.Fatalf("data written after the FIN: end %d, FIN %d", c.dataEnd(), c.finSeq)
	}
	if c.state == TimeWait && !c.timerArmed(TimerTimeWait) {
		t.Fatal("TIME-WAIT without its 2MSL timer")
	}
	if (c.state == FinWait2 || c.state == TimeWait) && !c.finAcked() {
		t.Fatalf("%v but our FIN is not acknowledged", c.state)
	}
}
