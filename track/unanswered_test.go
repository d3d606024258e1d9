package track

import (
	"testing"

	"github.com/tcpstate/tcpstate/tcp"
)

// wantBoth checks both the believed and the proven states.
func (h *harness) wantBoth(client, server, clientProven, serverProven tcp.State) {
	h.t.Helper()
	v := h.view()
	if v.ClientState != client || v.ServerState != server || v.ClientProven != clientProven || v.ServerProven != serverProven {
		h.t.Errorf("believed %v/%v proven %v/%v, want %v/%v proven %v/%v", v.ClientState, v.ServerState,
			v.ClientProven, v.ServerProven, client, server, clientProven, serverProven)
	}
}

// TestUnansweredSynAck: a SYN,ACK retransmitted with nothing from the
// client since the first one was not received by a TCP in SYN-SENT (it
// would have ACKed at once, RFC 9293 §3.10.7.3), as in a SYN flood from a
// raw socket: the client stays SYN-SENT, believed and proven.
func TestUnansweredSynAck(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.C(S, 100, 0, 0)
	h.S(SA, 500, 101, 0)
	// One SYN,ACK: believed delivered.
	h.wantBoth(tcp.Established, tcp.SynReceived, tcp.SynSent, tcp.SynReceived)
	h.S(SA, 500, 101, 0)
	h.wantBoth(tcp.SynSent, tcp.SynReceived, tcp.SynSent, tcp.SynReceived)
	h.S(SA, 500, 101, 0)
	h.wantBoth(tcp.SynSent, tcp.SynReceived, tcp.SynSent, tcp.SynReceived)
	// Finish (the ladder's and the diagram's view) agrees.
	h.tr.Finish(h.now)
	if c := h.tr.Conns()[0]; c.ep[0].st != tcp.SynSent {
		t.Errorf("after Finish the client is %v, want SYN-SENT", c.ep[0].st)
	}

	// A late ACK of the SYN,ACK proves it arrived after all.
	h = newHarness(t, "10.0.0.1:40001", "10.0.0.2:80")
	h.C(S, 100, 0, 0)
	h.S(SA, 500, 101, 0)
	h.S(SA, 500, 101, 0)
	h.C(A, 101, 501, 0)
	h.wantBoth(tcp.Established, tcp.Established, tcp.Established, tcp.SynReceived)

	// The client answered the first SYN,ACK: the retransmission shows
	// only that its ACK was lost, not that the client missed anything.
	h = newHarness(t, "10.0.0.1:40002", "10.0.0.2:80")
	h.C(S, 100, 0, 0)
	h.S(SA, 500, 101, 0)
	h.C(A, 101, 501, 0)
	h.S(SA, 500, 101, 0)
	h.wantBoth(tcp.Established, tcp.SynReceived, tcp.Established, tcp.SynReceived)
}

// TestUnansweredFin: a FIN retransmitted while its receiver sent nothing
// since the first transmission was not received (a FIN is ACKed at once,
// RFC 9293 §3.10.7.4); when the receiver did send something, the FIN is
// taken as delivered as before.
func TestUnansweredFin(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.handshake()
	h.S(FA, 501, 101, 0)
	h.want(tcp.CloseWait, tcp.FinWait1)
	h.S(FA, 501, 101, 0)
	h.wantBoth(tcp.Established, tcp.FinWait1, tcp.Established, tcp.FinWait1)

	h = newHarness(t, "10.0.0.1:40001", "10.0.0.2:80")
	h.handshake()
	h.S(FA, 501, 101, 0)
	h.C(A, 101, 502, 0)
	h.S(FA, 501, 101, 0)
	h.wantBoth(tcp.CloseWait, tcp.FinWait1, tcp.CloseWait, tcp.FinWait1)
}
