package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tcpstate/tcpstate/internal/stacktest"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/stack"
	"github.com/tcpstate/tcpstate/trace"
)

// pair starts a client and a server stack joined by an in-memory pipe, an
// echo listener on the server's port 80, and the server's admin endpoint.
func pair(t *testing.T) (client, server *stack.Stack, adm *httptest.Server) {
	t.Helper()
	client, server = stacktest.Pair(t, pipe.Config{}, nil)
	stacktest.Echo(t, server, ":80")
	adm = httptest.NewServer(New(server, Options{}))
	t.Cleanup(adm.Close)
	return client, server, adm
}

func dial(t *testing.T, s *stack.Stack) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.DialContext(ctx, "tcp", "10.0.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestConnsAndStats: the table shows the listener and an established
// connection with its queues, the counts per state and the filters in
// several spellings; the counters have RFC 4022's names and values.
func TestConnsAndStats(t *testing.T) {
	client, _, adm := pair(t)
	c := dial(t, client)
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	var tab Table
	get(t, adm.URL+"/conns", &tab)
	if tab.Counts["LISTEN"] != 1 || tab.Counts["ESTABLISHED"] != 1 {
		t.Fatalf("counts %v, want one LISTEN and one ESTABLISHED", tab.Counts)
	}
	var est *Conn
	for i := range tab.Conns {
		if tab.Conns[i].State == "ESTABLISHED" {
			est = &tab.Conns[i]
		}
	}
	if est == nil || est.Local != "10.0.0.2:80" || est.Remote != c.LocalAddr().String() || est.SegsIn == 0 {
		t.Fatalf("established row %+v, want 10.0.0.2:80 to %v with segments counted", est, c.LocalAddr())
	}
	for _, name := range []string{"estab", "ESTABLISHED", "Established"} {
		var f Table
		get(t, adm.URL+"/conns?state="+name, &f)
		if len(f.Conns) != 1 || f.Conns[0].State != "ESTABLISHED" {
			t.Errorf("?state=%s gave %+v", name, f.Conns)
		}
	}
	resp, err := http.Get(adm.URL + "/conns?state=bogus")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("?state=bogus: %s, want 400", resp.Status)
	}

	var st Stats
	get(t, adm.URL+"/stats", &st)
	if st.PassiveOpens != 1 || st.CurrEstab != 1 || st.InSegs < 3 || st.OutSegs < 2 {
		t.Errorf("stats %+v: want 1 passive open, 1 established, segments both ways", st)
	}
	if st.States["ESTABLISHED"] != 1 || len(st.States) != 11 {
		t.Errorf("states %v: want all eleven listed, one ESTABLISHED", st.States)
	}
}

// TestMetrics: /metrics parses as the Prometheus text format and carries
// the TCP-MIB counters, the per-state gauge and the per-transition and
// per-drop-reason counters with their labels.
func TestMetrics(t *testing.T) {
	client, _, adm := pair(t)
	c := dial(t, client)
	c.Close()
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get(adm.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Legacy validation: every name must also suit older Prometheus
	// servers.
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				found := false
				for _, lp := range m.Label {
					found = found || lp.GetName() == k && lp.GetValue() == v
				}
				if !found {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue(), true
			}
			return m.Gauge.GetValue(), true
		}
		return 0, false
	}
	for _, name := range []string{"ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets", "CurrEstab", "InSegs", "OutSegs", "RetransSegs", "InErrs", "OutRsts"} {
		if _, ok := value("tcpstate_Tcp_"+name, nil); !ok {
			t.Errorf("no tcpstate_Tcp_%s", name)
		}
	}
	if v, _ := value("tcpstate_Tcp_PassiveOpens", nil); v != 1 {
		t.Errorf("PassiveOpens = %v, want 1", v)
	}
	if v, ok := value("tcpstate_connections", map[string]string{"state": "LISTEN"}); !ok || v != 1 {
		t.Errorf("tcpstate_connections{state=LISTEN} = %v, %v; want 1", v, ok)
	}
	if v, ok := value("tcpstate_transitions_total", map[string]string{"from": "LISTEN", "to": "SYN-RECEIVED", "cause": "rcv SYN"}); !ok || v != 1 {
		t.Errorf("LISTEN → SYN-RECEIVED on rcv SYN = %v, %v; want 1", v, ok)
	}
	if _, ok := value("tcpstate_drops_total", map[string]string{"reason": DropBadChecksum}); !ok {
		t.Error("no tcpstate_drops_total{reason=bad_checksum}")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// TestEvents: /events streams the state changes of a connection made
// while the client listens, as trace records; ?kinds=all adds segments.
func TestEvents(t *testing.T) {
	client, _, adm := pair(t)
	for _, tc := range []struct {
		query   string
		wantSeg bool
	}{{"", false}, {"?kinds=all", true}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", adm.URL+"/events"+tc.query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, client)
		sc := bufio.NewScanner(resp.Body)
		var sawEstab, sawSeg bool
		for !sawEstab && sc.Scan() {
			var r trace.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if r.Kind == trace.KindSegmentIn || r.Kind == trace.KindSegmentOut {
				sawSeg = true
			} else if r.Kind != trace.KindState && !tc.wantSeg {
				t.Fatalf("%s record on a state-only stream", r.Kind)
			}
			sawEstab = r.Kind == trace.KindState && r.To.String() == "ESTABLISHED"
		}
		if !sawEstab {
			t.Fatalf("%s: stream ended before ESTABLISHED: %v", tc.query, sc.Err())
		}
		if sawSeg != tc.wantSeg {
			t.Errorf("%s: segments seen %v, want %v", tc.query, sawSeg, tc.wantSeg)
		}
		cancel()
		resp.Body.Close()
		c.Close()
	}
	resp, err := http.Get(adm.URL + "/events?kinds=nonsense")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "unknown event kind") {
		t.Errorf("?kinds=nonsense: %s %q", resp.Status, body)
	}
}

// TestTransitions: /transitions lists state changes with their causes in
// the shape `tcpstate diagram --admin` reads.
func TestTransitions(t *testing.T) {
	client, _, adm := pair(t)
	dial(t, client)
	var tr []Transition
	get(t, adm.URL+"/transitions", &tr)
	found := false
	for _, x := range tr {
		found = found || x.From == "SYN-RECEIVED" && x.To == "ESTABLISHED" && x.Cause == "rcv ACK" && x.Count == 1
	}
	if !found {
		t.Errorf("transitions %+v lack SYN-RECEIVED → ESTABLISHED on rcv ACK", tr)
	}
}
