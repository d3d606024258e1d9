package trace_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/demo"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// svgText decodes a whole SVG document, failing the test if it is not
// well-formed XML, and returns its character data one text element per
// entry.
func svgText(t *testing.T, b []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []string
	var cur strings.Builder
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			depth++
			if x.Name.Local == "text" {
				cur.Reset()
			}
		case xml.CharData:
			cur.Write(x)
		case xml.EndElement:
			depth--
			if x.Name.Local == "text" {
				out = append(out, cur.String())
			}
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced document")
	}
	return out
}

func scenarioRecords(t *testing.T, name string) (*demo.Scenario, []trace.Record) {
	t.Helper()
	s, err := demo.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Run(demo.Options{Seed: 1}).Records
}

// arrowLabels are the segment labels the text ladder draws.
var arrowLabel = regexp.MustCompile(`(?:-->|\.\.\.|<-+|X-+|X) ((?:[A-Z]+,?)+ seq=\d+(?: ack=\d+)?(?: len=\d+)? win=\d+)`)

func TestLadderSVGMatchesText(t *testing.T) {
	for _, name := range []string{"close", "retransmit", "lossy", "zero-window", "simultaneous-open"} {
		s, recs := scenarioRecords(t, name)
		opt := trace.LadderOptions{Left: s.Left, Right: s.Right}
		var txt, svg bytes.Buffer
		if err := trace.Ladder(&txt, recs, opt); err != nil {
			t.Fatal(err)
		}
		if err := trace.LadderSVG(&svg, recs, opt); err != nil {
			t.Fatal(err)
		}
		texts := svgText(t, svg.Bytes())
		all := strings.Join(texts, "\n")
		ms := arrowLabel.FindAllStringSubmatch(txt.String(), -1)
		if len(ms) < 5 {
			t.Fatalf("%s: only %d arrow labels in the text ladder", name, len(ms))
		}
		for _, m := range ms {
			if !strings.Contains(all, m[1]) {
				t.Errorf("%s: SVG lacks the arrow label %q", name, m[1])
			}
		}
		for _, st := range []string{"ESTABLISHED", "CLOSED"} {
			if !strings.Contains(all, st) {
				t.Errorf("%s: SVG lacks state %s", name, st)
			}
		}
		if !strings.Contains(svg.String(), `viewBox="0 0 `) {
			t.Errorf("%s: no viewBox", name)
		}
		if strings.Contains(svg.String(), "<script") || strings.Contains(svg.String(), "@import") {
			t.Errorf("%s: scripts or external resources", name)
		}
	}
}

func TestLadderSVGRetransmitAndLoss(t *testing.T) {
	s, recs := scenarioRecords(t, "retransmit")
	var b bytes.Buffer
	if err := trace.LadderSVG(&b, recs, trace.LadderOptions{Left: s.Left, Right: s.Right}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	all := strings.Join(svgText(t, b.Bytes()), "\n")
	// One retransmitted arrow (the legend has another), one lost packet's
	// X (two lines; the legend has one more X), the timer marks.
	if n := strings.Count(out, `marker-end="url(#a-retx)"`); n != 2 {
		t.Errorf("%d retransmission arrows (with the legend's), want 2", n)
	}
	if n := strings.Count(out, `stroke="#c92a2a" stroke-width="3"`); n != 4 {
		t.Errorf("%d X strokes (with the legend's), want 4", n)
	}
	for _, want := range []string{"retransmission timer expires", "2MSL timer expires", "client", "server", "10.0.0.1", "10.0.0.2", "the retransmission timer expires"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	var quiet bytes.Buffer
	_ = trace.LadderSVG(&quiet, recs, trace.LadderOptions{Left: s.Left, Right: s.Right, NoExplain: true})
	if strings.Contains(quiet.String(), "the retransmission timer expires") {
		t.Error("NoExplain still explains")
	}
}

// TestLadderSVGEscapes feeds names and notes that are markup, and
// characters XML forbids.
func TestLadderSVGEscapes(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("10.0.0.2:80")
	recs := []trace.Record{
		{Host: "<a&b>", Addr: a.Addr(), Kind: trace.KindHost},
		{Host: "c\"d'\x01", Addr: b.Addr(), Kind: trace.KindHost},
		{Step: 1, Kind: trace.KindNote, Text: "</svg><script>x</script>"},
		{Step: 2, Host: "<a&b>", Conn: tcp.Tuple{Local: a, Remote: b}, Kind: trace.KindCall, HasState: true, Call: "active OPEN"},
	}
	var buf bytes.Buffer
	if err := trace.LadderSVG(&buf, recs, trace.LadderOptions{}); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(svgText(t, buf.Bytes()), "\n")
	for _, want := range []string{"<a&b>", "</svg><script>x</script>"} {
		if !strings.Contains(all, want) {
			t.Errorf("text %q lost", want)
		}
	}
	if strings.Contains(buf.String(), "<script") {
		t.Error("note not escaped")
	}
}
