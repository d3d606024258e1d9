//go:build linux

package track

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/netlab"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/track/capture"
)

// kernelExceptions are the comparisons the capture cannot decide, per
// scenario, with the reason; everything else must agree with the kernel.
var kernelExceptions = map[string]struct {
	proven     bool // compare the proven states rather than the believed ones
	skipClient bool // the client has no socket the capture could tell about
	why        string
}{
	// The ACKs of the crossed FINs pass the router and are dropped by the
	// endpoints after it: nothing in the capture shows they were lost
	// (no FIN is retransmitted before it ends), so the believed states
	// are TIME-WAIT; the proven ones stay CLOSING, as the kernel's do.
	"simultaneous-closing": {proven: true, why: "ACKs lost after the capture point, not yet revealed"},
	// The client's repeated ACK (after the server's FIN retransmission)
	// crosses the router and is dropped by the server: the capture is
	// the same as lost-final-ack's, where that ACK arrives and the server
	// closes. The proven server state is LAST-ACK, as the kernel's is.
	"last-ack": {proven: true, why: "the repeated final ACK is lost after the capture point, as the first was"},
	// hping3 sends the SYNs from a raw socket: the client kernel has no
	// connection at all, which no packet in the capture can show (the
	// client's RSTs are dropped before the router).
	"syn-flood": {skipClient: true, why: "raw-socket client without kernel state"},
}

// TestKernelComparison runs every netlab scenario (real kernel sockets in
// namespaces, a capture in the router) and compares the tracker's view
// of the capture with the kernel's own at the capture's end: each
// endpoint's state with ss in the client and server, conntrack's state
// and timer with conntrack -L in the router, and the retransmission
// counts with each side's TcpRetransSegs.
func TestKernelComparison(t *testing.T) {
	for _, sc := range netlab.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			l := netlab.New(t)
			r := sc.Run(l, t)
			if err := r.Check(); err != nil {
				t.Fatalf("the scenario did not make its situation: %v", err)
			}
			tr, err := trackFile(r.Pcap, r.Taken)
			if err != nil {
				t.Fatal(err)
			}
			report := compareKernel(t, tr, r)
			t.Logf("%s: %s", sc.Name, report)
		})
	}
}

// trackFile runs a tracker over a capture, up to instant until.
func trackFile(path string, until time.Time) (*Tracker, error) {
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	tr := New(Config{})
	err = feedAll(rd, func(p *capture.Packet) bool {
		if p.T.After(until) {
			return false
		}
		tr.Feed(p)
		return true
	})
	if err != nil {
		return nil, err
	}
	return tr, nil
}

func compareKernel(t *testing.T, tr *Tracker, r netlab.Result) string {
	t.Helper()
	exc := kernelExceptions[r.Name]
	views := tr.Snapshot(r.Taken)
	var notes []string
	// Endpoint states, connection by connection.
	agree := 0
	tracked := map[[2]netip.AddrPort]bool{}
	for _, v := range views {
		tracked[[2]netip.AddrPort{v.Client, v.Server}] = true
		cs, ss := v.ClientState, v.ServerState
		if exc.proven {
			cs, ss = v.ClientProven, v.ServerProven
		}
		kc, ks := r.ClientState(v.Client, v.Server), r.ServerState(v.Client, v.Server)
		ok := ss == ks && (exc.skipClient || cs == kc)
		if !ok {
			t.Errorf("%v -> %v: tracker client %v server %v (believed %v %v), kernel client %v server %v",
				v.Client, v.Server, cs, ss, v.ClientState, v.ServerState, kc, ks)
		} else {
			agree++
		}
	}
	for side, socks := range map[string][]netlab.Socket{"client": r.Client, "server": r.Server} {
		for _, s := range socks {
			if s.State == tcp.Listen {
				continue
			}
			c, sv := s.Local, s.Peer
			if side == "server" {
				c, sv = s.Peer, s.Local
			}
			if !tracked[[2]netip.AddrPort{c, sv}] {
				t.Errorf("the %s's socket %v -> %v (%v) is not among the tracked connections", side, s.Local, s.Peer, s.State)
			}
		}
	}
	notes = append(notes, fmt.Sprintf("%d connections, states agree for %d", len(views), agree))

	// conntrack: every kernel entry has the tracker's state and a timer
	// within a few seconds, and the tracker has no entry the kernel lacks.
	ctAgree := 0
	byOrig := map[[2]netip.AddrPort]*ConnView{}
	for i := range views {
		if views[i].ConntrackState != "" {
			byOrig[[2]netip.AddrPort{views[i].ConntrackOrigSrc, views[i].ConntrackOrigDst}] = &views[i]
		}
	}
	for _, e := range r.Conntrack {
		v := byOrig[[2]netip.AddrPort{e.Orig.Src, e.Orig.Dst}]
		if v == nil {
			t.Errorf("conntrack has %s, the tracker none: %s", e.State, e.Line)
			continue
		}
		delete(byOrig, [2]netip.AddrPort{e.Orig.Src, e.Orig.Dst})
		diff := v.ConntrackExpire - e.Timeout
		if v.ConntrackState != e.State || diff < -3*time.Second || diff > 3*time.Second {
			t.Errorf("conntrack %s %v, tracker %s %v", e.State, e.Timeout, v.ConntrackState, v.ConntrackExpire.Round(time.Second))
			continue
		}
		ctAgree++
	}
	for k, v := range byOrig {
		t.Errorf("the tracker has a conntrack entry %s %v -> %v the kernel lacks", v.ConntrackState, k[0], k[1])
	}
	notes = append(notes, fmt.Sprintf("conntrack %d/%d agree", ctAgree, len(r.Conntrack)))

	// Retransmissions: the sum over connections of each side's count.
	var rc, rs uint64
	for _, v := range views {
		rc += v.Retrans[C2S]
		rs += v.Retrans[S2C]
	}
	if rc != r.RetransClient || rs != r.RetransServer {
		t.Errorf("retransmissions: tracker client %d server %d, kernel TcpRetransSegs client %d server %d",
			rc, rs, r.RetransClient, r.RetransServer)
	}
	notes = append(notes, fmt.Sprintf("retransmissions client %d/%d server %d/%d", rc, r.RetransClient, rs, r.RetransServer))
	if exc.why != "" {
		notes = append(notes, "exception: "+exc.why)
	}
	return strings.Join(notes, "; ")
}
