package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var (
	stepRe = regexp.MustCompile(`"step":\d+`)
	pktRe  = regexp.MustCompile(`,"pkt":\d+`)
)

func TestDiagramPlain(t *testing.T) {
	code, out, errs := runCmd("diagram")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wellFormed(t, out)
	for _, want := range []string{"ESTABLISHED", "TIME-WAIT", "rcv SYN / snd SYN,ACK"} {
		if !strings.Contains(out, want) {
			t.Errorf("diagram lacks %q", want)
		}
	}
	code, out, _ = runCmd("diagram", "--format", "dot")
	if code != 0 || !strings.HasPrefix(out, "digraph tcp {") {
		t.Errorf("dot: exit %d, %.40q", code, out)
	}
	if code, _, errs := runCmd("diagram", "--format", "png"); code == 0 || !strings.Contains(errs, "unknown format") {
		t.Errorf("bad format accepted: %q", errs)
	}
}

func TestDiagramTrace(t *testing.T) {
	p := demoJSON(t, "close", "handshake")
	code, out, errs := runCmd("diagram", "--trace", p, "--format", "dot")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Two runs: two active opens, one 2MSL timeout.
	for _, want := range []string{`"CLOSED" -> "SYN-SENT" [label="active OPEN / snd SYN ×2"`, `"TIME-WAIT" -> "CLOSED" [label="timeout=2MSL / delete TCB ×1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("dot lacks %s", want)
		}
	}
}

func TestDiagramAdmin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/transitions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"from":"SYN-SENT","to":"ESTABLISHED","cause":"rcv SYN,ACK","count":3},` +
			`{"from":"ESTABLISHED","to":"FIN-WAIT-1","cause":"CLOSE","count":2},` +
			`{"from":"ESTABLISHED","to":"LISTEN","cause":"rcv SYN","count":1}]`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, out, errs := runCmd("diagram", "--admin", addr, "--format", "dot")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"rcv SYN,ACK / snd ACK ×3", `"ESTABLISHED" -> "FIN-WAIT-1" [label="CLOSE / snd FIN ×2"`, `"ESTABLISHED" -> "LISTEN" [label="rcv SYN (not in the diagram) ×1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("dot lacks %s", want)
		}
	}
	code, out, errs = runCmd("diagram", "--admin", addr)
	if code != 0 {
		t.Fatalf("svg: exit %d: %s", code, errs)
	}
	wellFormed(t, out)
	if !strings.Contains(out, "rcv SYN,ACK / snd ACK  ×3") || !strings.Contains(out, "ESTABLISHED -&gt; LISTEN on rcv SYN  ×1") {
		t.Error("svg lacks the admin's counts")
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"not":"a list"}`))
	}))
	defer bad.Close()
	if code, _, errs := runCmd("diagram", "--admin", strings.TrimPrefix(bad.URL, "http://")); code == 0 || errs == "" {
		t.Error("malformed admin answer accepted")
	}
	if code, _, _ := runCmd("diagram", "--admin", addr, "--trace", "x"); code == 0 {
		t.Error("--admin with --trace accepted")
	}
}
