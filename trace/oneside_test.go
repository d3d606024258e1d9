package trace_test

import (
	"bytes"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// oneSided makes what a running stack's trace holds from a simulated run
// of real tcp.Conns: only host's records, renamed "tcpstate", with no
// steps, no packet numbers and no run name.
func oneSided(recs []trace.Record, host string) []trace.Record {
	var out []trace.Record
	for _, r := range recs {
		if r.Host != host {
			continue
		}
		r.Host, r.Step, r.Pkt, r.Run = "tcpstate", 0, 0, ""
		out = append(out, r)
	}
	return out
}

// textArrow matches a text ladder line that draws an arrow.
var textArrow = regexp.MustCompile(`(?m)^ {0,8}[0-9. ]{0,9} ?[A-Z0-9-]* *(-->|<-)`)

// leftStates lists the left state column's changes down a text ladder:
// the 12 columns after the 8-column time and a space, on rows that are not
// the header or an explanation.
func leftStates(ladder string) []string {
	var out []string
	for i, line := range strings.Split(ladder, "\n") {
		if i == 0 || len(line) < 10 || strings.HasPrefix(line, "           ") {
			continue
		}
		st := strings.TrimSpace(line[9:min(len(line), 21)])
		if st != "" && (len(out) == 0 || out[len(out)-1] != st) {
			out = append(out, st)
		}
	}
	return out
}

func TestWithPeerClient(t *testing.T) {
	_, recs := scenarioRecords(t, "close")
	one := oneSided(recs, "client")
	conns := trace.Conns(one)
	if len(conns) != 1 {
		t.Fatalf("Conns = %v, want one", conns)
	}
	id := conns[0]
	drawn := trace.WithPeer(trace.ForConn(one, id))
	var txt bytes.Buffer
	if err := trace.Ladder(&txt, drawn, trace.LadderOptions{}); err != nil {
		t.Fatal(err)
	}
	out := txt.String()
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[0], "tcpstate 10.0.0.1") || !strings.Contains(lines[0], id.Remote.String()) {
		t.Errorf("header %q: want the host with its address and the peer by its address", lines[0])
	}
	if n := len(textArrow.FindAllString(out, -1)); n != 7 {
		t.Errorf("%d arrows, want the close scenario's 7 segments:\n%s", n, out)
	}
	for _, want := range []string{"SYN seq=1000 win=65535", "SYN,ACK seq=5000 ack=1001", "FIN,ACK seq=1001 ack=5001", "ACK seq=1002 ack=5002", "[2MSL timer expires]"} {
		if !strings.Contains(out, want) {
			t.Errorf("ladder lacks %q", want)
		}
	}
	wantStates := []string{"CLOSED", "SYN-SENT", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"}
	if got := leftStates(out); !slices.Equal(got, wantStates) {
		t.Errorf("host states %v, want %v", got, wantStates)
	}
	// The peer's state is unknown: no state name in the right columns.
	for _, line := range lines[1:] {
		if strings.HasPrefix(line, "           ") {
			continue // an explanation
		}
		if len(line) > 76 && strings.ContainsAny(line[76:], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Errorf("peer column shows something: %q", line)
		}
	}
	// Steps were assigned, packets numbered, arrivals in the same step.
	for i, r := range drawn {
		if r.Kind == trace.KindSegmentOut && r.Host == "tcpstate" {
			if i+1 >= len(drawn) || drawn[i+1].Kind != trace.KindSegmentIn || drawn[i+1].Pkt != r.Pkt || drawn[i+1].Step != r.Step || r.Pkt == 0 {
				t.Errorf("send %d not followed by its arrival at the peer", i)
			}
		}
	}

	var svg bytes.Buffer
	if err := trace.LadderSVG(&svg, drawn, trace.LadderOptions{}); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(svgText(t, svg.Bytes()), "\n")
	if n := strings.Count(svg.String(), `marker-end="url(#a-seg)"`); n != 8 {
		t.Errorf("%d arrows in the SVG (with the legend's), want 8", n)
	}
	for _, st := range wantStates {
		if !strings.Contains(all, st) {
			t.Errorf("SVG lacks %s", st)
		}
	}
	if strings.Contains(all, "LISTEN") || strings.Contains(all, "CLOSE-WAIT") {
		t.Error("SVG shows a state for the peer")
	}
}

func TestWithPeerServer(t *testing.T) {
	_, recs := scenarioRecords(t, "close")
	one := oneSided(recs, "server")
	conns := trace.Conns(one)
	if len(conns) != 1 || conns[0].Local.Port() != 80 {
		t.Fatalf("Conns = %v, want the server's one connection (the listener is none)", conns)
	}
	drawn := trace.WithPeer(trace.ForConn(one, conns[0]))
	var txt bytes.Buffer
	if err := trace.Ladder(&txt, drawn, trace.LadderOptions{}); err != nil {
		t.Fatal(err)
	}
	out := txt.String()
	if n := len(textArrow.FindAllString(out, -1)); n != 7 {
		t.Errorf("%d arrows, want 7:\n%s", n, out)
	}
	states := leftStates(out)
	if i, j := slices.Index(states, "CLOSE-WAIT"), slices.Index(states, "LAST-ACK"); i < 0 || j < i {
		t.Errorf("server states %v: want CLOSE-WAIT then LAST-ACK", states)
	}
}

func TestConnsForConn(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:1000")
	b := netip.MustParseAddrPort("10.0.0.2:80")
	c := netip.MustParseAddrPort("10.0.0.3:2000")
	ab, cb := tcp.Tuple{Local: a, Remote: b}, tcp.Tuple{Local: c, Remote: b}
	listener := tcp.Tuple{Local: b}
	recs := []trace.Record{
		{Host: "h", Kind: trace.KindHost},
		{Host: "h", Conn: listener, Kind: trace.KindListen},
		{Host: "h", Conn: cb, Kind: trace.KindSegmentIn},
		{Host: "h", Conn: ab, Kind: trace.KindSegmentIn},
		{Host: "h", Conn: cb, Kind: trace.KindSegmentOut},
		{Host: "x", Conn: trace.Reverse(ab), Kind: trace.KindSegmentOut},
	}
	got := trace.Conns(recs)
	want := []tcp.Tuple{cb, ab, trace.Reverse(ab)}
	if !slices.Equal(got, want) {
		t.Errorf("Conns = %v, want %v", got, want)
	}
	f := trace.ForConn(recs, ab)
	if len(f) != 4 || f[0].Kind != trace.KindHost || f[1].Kind != trace.KindListen || f[2].Conn != ab || f[3].Conn != trace.Reverse(ab) {
		t.Errorf("ForConn = %+v", f)
	}
	if trace.WithPeer(nil) != nil {
		t.Error("WithPeer(nil) not nil")
	}
}
