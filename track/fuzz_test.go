package track

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
	"github.com/tcpstate/tcpstate/track/capture"
)

// FuzzTracker feeds random packet sequences between a few endpoints: the
// tracker must not panic, every state it reports must be one of the
// eleven, and the outputs must be written.
func FuzzTracker(f *testing.F) {
	// Seeds: a handshake and close, and a simultaneous close, encoded as
	// the fuzz input below reads them (8 bytes per packet).
	enc := func(pk ...[5]uint32) []byte {
		var b []byte
		for _, p := range pk {
			var x [8]byte
			x[0] = byte(p[0])                               // direction and endpoint pair
			x[1] = byte(p[1])                               // flags
			binary.BigEndian.PutUint16(x[2:], uint16(p[2])) // seq (low bits)
			binary.BigEndian.PutUint16(x[4:], uint16(p[3])) // ack
			x[6] = byte(p[4])                               // payload length
			x[7] = 10                                       // milliseconds since the previous packet
			b = append(b, x[:]...)
		}
		return b
	}
	f.Add(enc([5]uint32{0, uint32(S), 100, 0, 0}, [5]uint32{1, uint32(SA), 500, 101, 0}, [5]uint32{0, uint32(A), 101, 501, 0},
		[5]uint32{0, uint32(FA), 101, 501, 0}, [5]uint32{1, uint32(FA), 501, 102, 0}, [5]uint32{0, uint32(A), 102, 502, 0}))
	f.Add(enc([5]uint32{0, uint32(S), 100, 0, 0}, [5]uint32{1, uint32(S), 500, 0, 0}, [5]uint32{0, uint32(FA), 101, 501, 0},
		[5]uint32{1, uint32(FA), 501, 101, 0}, [5]uint32{0, uint32(R), 102, 0, 0}))
	eps := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80"),
		netip.MustParseAddrPort("[fd00::1]:40000"), netip.MustParseAddrPort("[fd00::2]:80"),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := New(Config{TimeWait: time.Second, Keep: func(a, b netip.AddrPort) bool { return true }})
		now := t0
		for len(data) >= 8 {
			x := data[:8]
			data = data[8:]
			pair := int(x[0]>>1) % 2
			src, dst := eps[2*pair], eps[2*pair+1]
			if x[0]&1 == 1 {
				src, dst = dst, src
			}
			now = now.Add(time.Duration(x[7]) * 100 * time.Millisecond)
			p := &capture.Packet{T: now, Src: src, Dst: dst, Flags: header.TCPFlags(x[1]),
				Seq: seqnum.Value(binary.BigEndian.Uint16(x[2:])), Ack: seqnum.Value(binary.BigEndian.Uint16(x[4:])),
				Window: uint16(x[6]) * 100, PayloadLen: int(x[6])}
			tr.Feed(p)
			for _, v := range tr.Snapshot(now) {
				for _, s := range []tcp.State{v.ClientState, v.ServerState, v.ClientProven, v.ServerProven} {
					if int(s) >= tcp.NumStates {
						t.Fatalf("invalid state %d", s)
					}
				}
			}
		}
		views := tr.Snapshot(now.Add(time.Minute))
		var b bytes.Buffer
		if err := WriteJSON(&b, views); err != nil {
			t.Fatal(err)
		}
		for _, m := range []Model{ModelRFC, ModelConntrack, ModelIPVS} {
			WriteTable(&b, views, m)
		}
		WriteFindings(&b, Diagnose(views, now, time.Minute, Thresholds{SynFlood: 1, SynFloodSources: 1, TimeWait: 1, RSTStorm: 1, Retrans: 1, ZeroWindow: 1}))
		tr.Finish(now.Add(time.Minute))
		for _, c := range tr.Conns() {
			if err := trace.Ladder(&b, c.Records(), trace.LadderOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		trace.DiagramDOT(&b, tr.TransitionCounts(), trace.DiagramOptions{})
	})
}
