package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/demo"
	"github.com/tcpstate/tcpstate/trace"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestList(t *testing.T) {
	code, out, errs := runCmd("demo", "--list")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(demo.Scenarios()) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(demo.Scenarios()), out)
	}
	for i, s := range demo.Scenarios() {
		if f := strings.Fields(lines[i]); len(f) < 2 || f[0] != s.Name {
			t.Errorf("line %d = %q, want %s and its title", i+1, lines[i], s.Name)
		}
	}
	for _, name := range []string{"handshake", "data", "close", "half-close", "fin-ack", "simultaneous-close",
		"lost-final-ack", "old-duplicate-syn", "simultaneous-open", "syn-recv-timeout", "refused"} {
		if !strings.Contains(out, name+" ") {
			t.Errorf("--list lacks %s", name)
		}
	}
}

func TestText(t *testing.T) {
	code, out, errs := runCmd("demo", "close")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"== close:", "FIN-WAIT-2", "LAST-ACK", "TIME-WAIT", "[2MSL timer expires]"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 100 {
			t.Errorf("line wider than 100: %q", line)
		}
	}
}

func TestAll(t *testing.T) {
	code, out, errs := runCmd("demo")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	last := -1
	for _, s := range demo.Scenarios() {
		i := strings.Index(out, "== "+s.Name+": ")
		if i <= last {
			t.Errorf("%s missing or out of order", s.Name)
		}
		last = i
	}
}

func TestJSON(t *testing.T) {
	code, out, errs := runCmd("demo", "handshake", "refused", "--format", "json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	runs := map[string]int{}
	types := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		run, _ := m["run"].(string)
		runs[run]++
		typ, _ := m["type"].(string)
		types[typ] = true
	}
	if len(runs) != 2 || runs["handshake"] == 0 || runs["refused"] == 0 {
		t.Errorf("runs %v, want handshake and refused", runs)
	}
	for _, typ := range []string{"state", "segment-in", "segment-out", "timer-set", "call", "host", "listen"} {
		if !types[typ] {
			t.Errorf("no %q record", typ)
		}
	}
	// The same command gives the same bytes.
	_, again, _ := runCmd("demo", "handshake", "refused", "--format", "json")
	if again != out {
		t.Error("two runs differ")
	}
}

func TestErrors(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "no-such-scenario"},
		{"demo", "--bogus"},
		{"demo", "--format", "xml"},
		{"demo", "--seed", "minus-one"},
		{"no-such-command"},
	} {
		code, out, errs := runCmd(args...)
		if code == 0 {
			t.Errorf("%v: exit 0", args)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", args, out)
		}
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "tcpstate: ") {
			t.Errorf("%v: stderr %q, want one line", args, errs)
		}
		if strings.Contains(errs, "goroutine") || strings.Contains(errs, "Usage:") {
			t.Errorf("%v: stderr has a trace or usage: %q", args, errs)
		}
	}
	_, _, errs := runCmd("demo", "no-such-scenario")
	if !strings.Contains(errs, `unknown scenario "no-such-scenario"`) {
		t.Errorf("stderr %q does not name the scenario", errs)
	}
}

func TestSeed(t *testing.T) {
	_, a, _ := runCmd("demo", "lossy", "--seed", "1", "--format", "json")
	_, b, _ := runCmd("demo", "lossy", "--seed", "2", "--format", "json")
	if a == b {
		t.Error("--seed does not change the lossy run")
	}
}

// TestDemoTrace: --trace writes the scenarios' events as JSON lines while
// the ladder still goes to stdout.
func TestDemoTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.jsonl")
	code, out, errs := runCmd("demo", "close", "--trace", path)
	if code != 0 || !strings.Contains(out, "TIME-WAIT") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := trace.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	var states, segs int
	for _, r := range recs {
		if r.Run != "close" {
			t.Fatalf("record of run %q in a trace of close", r.Run)
		}
		switch r.Kind {
		case trace.KindState:
			states++
		case trace.KindSegmentOut:
			segs++
		}
	}
	if states < 6 || segs < 6 {
		t.Errorf("trace has %d state changes and %d segments sent; the close scenario makes more", states, segs)
	}
	code, _, errs = runCmd("demo", "close", "--trace", filepath.Join(t.TempDir(), "no", "such", "dir", "x"))
	if code == 0 || !strings.Contains(errs, "--trace") {
		t.Errorf("unwritable --trace: exit %d, %q", code, errs)
	}
}
