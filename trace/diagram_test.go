package trace_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

func TestParseCause(t *testing.T) {
	for _, c := range []struct {
		from, to tcp.State
		cause    string
		want     tcp.Trigger
	}{
		{tcp.SynSent, tcp.Established, "rcv SYN,ACK", tcp.TrigSYNACK},
		{tcp.SynSent, tcp.SynReceived, "rcv SYN", tcp.TrigSYN},
		{tcp.Listen, tcp.SynReceived, "rcv SYN", tcp.TrigSYN},
		{tcp.Closed, tcp.Listen, "passive OPEN", tcp.TrigPassiveOpen},
		{tcp.Closed, tcp.SynSent, "active OPEN", tcp.TrigActiveOpen},
		{tcp.Established, tcp.FinWait1, "CLOSE", tcp.TrigClose},
		{tcp.Established, tcp.Closed, "ABORT", tcp.TrigAbort},
		{tcp.Established, tcp.CloseWait, "rcv FIN,ACK", tcp.TrigFIN},
		{tcp.FinWait1, tcp.TimeWait, "rcv FIN,ACK", tcp.TrigFINACK},
		{tcp.FinWait2, tcp.TimeWait, "rcv FIN,PSH,ACK", tcp.TrigFIN},
		{tcp.FinWait1, tcp.FinWait2, "rcv ACK", tcp.TrigACK},
		{tcp.Established, tcp.Closed, "rcv RST,ACK", tcp.TrigRST},
		{tcp.TimeWait, tcp.Closed, "timeout 2MSL", tcp.TrigTimeWaitTimeout},
		{tcp.SynSent, tcp.Closed, "timeout retransmission", tcp.TrigRetransmitTimeout},
		{tcp.Established, tcp.Closed, "timeout user timeout", tcp.TrigUserTimeout},
	} {
		got, err := trace.ParseCause(c.from, c.to, c.cause)
		if err != nil || got != c.want {
			t.Errorf("ParseCause(%v, %v, %q) = %v, %v; want %v", c.from, c.to, c.cause, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "rcv BOGUS", "timeout never", "dance"} {
		if got, err := trace.ParseCause(tcp.Established, tcp.Closed, bad); err == nil || got != trace.UnknownTrigger {
			t.Errorf("ParseCause(%q) = %v, %v; want an error", bad, got, err)
		}
	}
}

func TestCountTransitions(t *testing.T) {
	_, recs := scenarioRecords(t, "close")
	recs = append(recs, trace.Record{Kind: trace.KindState, From: tcp.Established, To: tcp.Listen, Cause: "magic"})
	c := trace.CountTransitions(recs)
	for k, want := range map[trace.DiagramKey]uint64{
		{From: tcp.Closed, To: tcp.SynSent, Trigger: tcp.TrigActiveOpen}:       1,
		{From: tcp.SynSent, To: tcp.Established, Trigger: tcp.TrigSYNACK}:      1,
		{From: tcp.FinWait2, To: tcp.TimeWait, Trigger: tcp.TrigFIN}:           1,
		{From: tcp.TimeWait, To: tcp.Closed, Trigger: tcp.TrigTimeWaitTimeout}: 1,
		{From: tcp.LastAck, To: tcp.Closed, Trigger: tcp.TrigACK}:              1,
		{From: tcp.Established, To: tcp.Listen, Trigger: trace.UnknownTrigger}: 1,
	} {
		if c[k] != want {
			t.Errorf("count %+v = %d, want %d", k, c[k], want)
		}
	}
}

func TestDiagramSVG(t *testing.T) {
	_, recs := scenarioRecords(t, "close")
	counts := trace.CountTransitions(recs)
	odd := trace.DiagramKey{From: tcp.Established, To: tcp.SynSent, Trigger: tcp.TrigSend}
	counts[odd] = 4
	for _, c := range []map[trace.DiagramKey]uint64{nil, counts} {
		var b bytes.Buffer
		if err := trace.DiagramSVG(&b, c, trace.DiagramOptions{}); err != nil {
			t.Fatal(err)
		}
		texts := svgText(t, b.Bytes())
		all := strings.Join(texts, "\n")
		for st := tcp.State(0); int(st) < tcp.NumStates; st++ {
			if !strings.Contains(all, st.String()) {
				t.Errorf("no state %s", st)
			}
		}
		for _, e := range tcp.Edges {
			if !strings.Contains(all, e.Label) {
				t.Errorf("no label %q", e.Label)
			}
		}
		if c == nil {
			if strings.Contains(all, "×") {
				t.Error("counts drawn without counts")
			}
			continue
		}
		// Each counted edge's count sits on a label line that names it.
		for _, e := range tcp.Edges {
			n := c[trace.DiagramKey{From: e.From, To: e.To, Trigger: e.Trigger}]
			if n == 0 {
				continue
			}
			found := false
			for _, line := range texts {
				if strings.HasSuffix(line, fmt.Sprintf("×%d", n)) &&
					(strings.Contains(line, e.Label) || strings.HasPrefix(line, e.Trigger.String())) {
					found = true
				}
			}
			if !found {
				t.Errorf("no count ×%d for %s -> %s (%s)", n, e.From, e.To, e.Label)
			}
		}
		if !strings.Contains(all, "ESTABLISHED -> SYN-SENT on SEND  ×4") {
			t.Errorf("the transition the diagram lacks is not listed:\n%s", all)
		}
	}
}

var dotEdge = regexp.MustCompile(`^  "[^"\\]+" -> "[^"\\]+" \[label="([^"\\]|\\.)*"(, [a-z]+=("[^"]*"|[0-9.]+|[a-z]+))*\];$`)

func TestDiagramDOT(t *testing.T) {
	_, recs := scenarioRecords(t, "close")
	counts := trace.CountTransitions(recs)
	counts[trace.DiagramKey{From: tcp.Established, To: tcp.SynSent, Trigger: trace.UnknownTrigger}] = 2
	var b bytes.Buffer
	if err := trace.DiagramDOT(&b, counts, trace.DiagramOptions{Title: `a "quoted" \ title`}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "digraph tcp {" || lines[len(lines)-1] != "}" {
		t.Fatalf("not a digraph:\n%s", out)
	}
	if strings.Count(out, "{") != strings.Count(out, "}") {
		t.Error("unbalanced braces")
	}
	edges := 0
	for _, l := range lines {
		if strings.Contains(l, " -> ") {
			edges++
			if !dotEdge.MatchString(l) {
				t.Errorf("edge line malformed: %s", l)
			}
		}
	}
	if edges != len(tcp.Edges)+1 {
		t.Errorf("%d edges, want %d and the unknown one", edges, len(tcp.Edges)+1)
	}
	if !strings.Contains(out, `label="a \"quoted\" \\ title"`) {
		t.Error("title not quoted")
	}
	if !strings.Contains(out, `"TIME-WAIT" -> "CLOSED" [label="timeout=2MSL / delete TCB ×1"`) {
		t.Error("count missing on the 2MSL edge")
	}
	// Graphviz itself, where it is installed: optional, CI does not need it.
	if path, err := exec.LookPath("dot"); err == nil {
		cmd := exec.Command(path, "-Tsvg")
		cmd.Stdin = &b
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("dot rejects the output: %v\n%s", err, msg)
		}
	}
}
