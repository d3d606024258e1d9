package trace_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/demo"
	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// TestJSONRoundTrip writes every scenario's records as JSON lines, reads
// them back, and compares: records, and the ladder drawn from each.
func TestJSONRoundTrip(t *testing.T) {
	for _, s := range demo.Scenarios() {
		r := s.Run(demo.Options{Seed: 1})
		var buf bytes.Buffer
		if err := trace.WriteJSON(&buf, r.Records); err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s line %d: %v: %s", s.Name, i+1, err, line)
			}
		}
		back, err := trace.ReadJSON(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, r.Records) {
			for i := range back {
				if !reflect.DeepEqual(back[i], r.Records[i]) {
					t.Fatalf("%s: record %d\n got %+v\nwant %+v", s.Name, i, back[i], r.Records[i])
				}
			}
			t.Fatalf("%s: %d records back, want %d", s.Name, len(back), len(r.Records))
		}
		var l1, l2 bytes.Buffer
		opt := trace.LadderOptions{Left: s.Left, Right: s.Right}
		_ = trace.Ladder(&l1, r.Records, opt)
		_ = trace.Ladder(&l2, back, opt)
		if l1.String() != l2.String() {
			t.Errorf("%s: ladders differ after a JSON round trip", s.Name)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	r := trace.Record{
		T: 1500 * time.Millisecond, Step: 3, Host: "a\"b", Kind: trace.KindSegmentOut,
		HasSeg: true, Seg: demoSeg(), Reason: "data", Retransmit: true, Text: "tab\there\x01",
	}
	got := string(r.AppendJSON(nil))
	want := `{"t":1.5,"step":3,"host":"a\"b","type":"segment-out","flags":"FIN,PSH,ACK","seq":4294967295,"ack":7,"win":512,"len":10,"reason":"data","retransmit":true,"text":"tab\there\u0001"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseFlags(t *testing.T) {
	for _, f := range []header.TCPFlags{0, header.SYN, header.SYN | header.ACK, header.FIN | header.PSH | header.ACK, header.RST | header.ACK, 0xff} {
		g, err := trace.ParseFlags(f.String())
		if err != nil || g != f {
			t.Errorf("ParseFlags(%q) = %v, %v; want %v", f.String(), g, err, f)
		}
	}
	if _, err := trace.ParseFlags("SYN,BOGUS"); err == nil {
		t.Error("ParseFlags accepted BOGUS")
	}
}

func TestReadJSONErrors(t *testing.T) {
	_, err := trace.ReadJSON(strings.NewReader("{\"t\":0,\"type\":\"note\"}\n\nnot json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("err = %v, want one naming line 3", err)
	}
}

// TestLadderShapes checks the arrows a ladder draws for each fate of a
// packet.
func TestLadderShapes(t *testing.T) {
	r := mustRun(t, "simultaneous-close")
	out := ladder(t, r)
	for _, want := range []string{
		"FIN-WAIT-1   --> FIN,ACK seq=1001 ack=5001 win=65535 ---------- ... ESTABLISHED",
		"FIN-WAIT-1   ... ---------- FIN,ACK seq=5001 ack=1001 win=65535 <-- FIN-WAIT-1",
		"... FIN,ACK seq=1001 ack=5001 win=65535 -------------> CLOSING",
		"CLOSING      <------------- FIN,ACK seq=5001 ack=1001 win=65535 ... CLOSING",
		"[2MSL timer expires]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("simultaneous-close ladder lacks %q:\n%s", want, out)
		}
	}
	out = ladder(t, mustRun(t, "retransmit"))
	if !strings.Contains(out, "X-- PSH,ACK seq=5001 ack=1101 len=1000 win=65535 <-- ESTABLISHED") {
		t.Errorf("retransmit: the lost reply is not drawn ending in X:\n%s", out)
	}
	if !strings.Contains(out, "The reply is lost.") {
		t.Errorf("retransmit: the filter's reason is missing:\n%s", out)
	}
	if !strings.Contains(out, "[retransmission timer expires]") && !strings.Contains(out, "the retransmission timer expires") {
		t.Errorf("retransmit: no retransmission timeout:\n%s", out)
	}
	out = ladder(t, mustRun(t, "fin-ack"))
	if !strings.Contains(out, "TIME-WAIT    <------------- FIN,ACK seq=5001 ack=1002 win=65535 <-- LAST-ACK") {
		t.Errorf("fin-ack: the server's FIN does not carry the ACK straight to TIME-WAIT:\n%s", out)
	}
	if !strings.Contains(out, "holds its ACK back for up to 40ms (delayed ACK)") {
		t.Errorf("fin-ack: the delayed ACK is not explained:\n%s", out)
	}
	out = ladder(t, mustRun(t, "handshake"))
	for _, want := range []string{
		"   0.000 SYN-SENT     --> SYN seq=1000 win=65535 --------------------------> SYN-RECEIVED    0.010",
		"client: connects (active OPEN), CLOSED -> SYN-SENT",
		"server: LISTEN -> SYN-RECEIVED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("handshake ladder lacks %q:\n%s", want, out)
		}
	}
}

func TestLadderNoExplainAndWidth(t *testing.T) {
	r := mustRun(t, "close")
	var b bytes.Buffer
	if err := trace.Ladder(&b, r.Records, trace.LadderOptions{NoExplain: true, Width: 120}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "           ") && strings.TrimSpace(line) != "" {
			t.Errorf("explanation line with NoExplain: %q", line)
		}
		if len(line) > 120 {
			t.Errorf("line wider than 120: %q", line)
		}
	}
	if !strings.Contains(b.String(), "client 10.0.0.1") {
		t.Error("hosts not inferred from the records")
	}
}

func mustRun(t *testing.T, name string) *demo.Result {
	t.Helper()
	s, err := demo.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run(demo.Options{Seed: 1})
}

func ladder(t *testing.T, r *demo.Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Ladder(&b, 100); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
func demoSeg() tcp.SegmentInfo {
	return tcp.SegmentInfo{Seq: 0xffffffff, Ack: 7, Flags: header.FIN | header.PSH | header.ACK, Window: 512, Len: 10}
}

func TestOptions(t *testing.T) {
	var o header.TCPOptions
	if s := trace.FormatOptions(&o); s != "" {
		t.Errorf("no options: %q", s)
	}
	o = header.TCPOptions{MSS: 1460, HasMSS: true, WindowScale: 7, HasWindowScale: true, SACKPermitted: true,
		TSVal: 100, TSEcr: 0, HasTimestamps: true}
	o.SACKBlocks[0] = header.SACKBlock{Left: 2001, Right: 3001}
	o.SACKBlocks[1] = header.SACKBlock{Left: 4294967000, Right: 5}
	o.NumSACK = 2
	s := trace.FormatOptions(&o)
	if want := "mss=1460 ws=7 sackOK ts=100/0 sack=2001-3001,4294967000-5"; s != want {
		t.Errorf("FormatOptions = %q, want %q", s, want)
	}
	back, err := trace.ParseOptions(s)
	if err != nil || back != o {
		t.Errorf("ParseOptions(%q) = %+v, %v; want %+v", s, back, err, o)
	}
	for _, bad := range []string{"mss=x", "ws=300", "ts=1", "sack=1", "sack=1-2,3-4,5-6,7-8,9-10", "bogus"} {
		if _, err := trace.ParseOptions(bad); err == nil {
			t.Errorf("ParseOptions(%q) accepted", bad)
		}
	}
	// Options travel in JSON.
	r := trace.Record{Kind: trace.KindSegmentOut, HasSeg: true, Seg: demoSeg(), Opts: s}
	var back2 trace.Record
	if err := back2.UnmarshalJSON(r.AppendJSON(nil)); err != nil || back2.Opts != s {
		t.Errorf("opts after a JSON round trip: %q, %v", back2.Opts, err)
	}
}
