package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demoJSON writes the named scenarios' JSON lines to a file and returns
// its path.
func demoJSON(t *testing.T, names ...string) string {
	t.Helper()
	code, out, errs := runCmd(append(append([]string{"demo"}, names...), "--format", "json")...)
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	p := filepath.Join(t.TempDir(), "trace.json")
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		if _, err := d.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
}

func TestLadderDemoTrace(t *testing.T) {
	p := demoJSON(t, "handshake", "close")
	code, out, errs := runCmd("ladder", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	i, j := strings.Index(out, "== handshake "), strings.Index(out, "== close ")
	if i < 0 || j < i {
		t.Fatalf("want a heading per run, in order:\n%s", out)
	}
	for _, want := range []string{"client 10.0.0.1", "server 10.0.0.2", "FIN-WAIT-2", "LAST-ACK", "[2MSL timer expires]"} {
		if !strings.Contains(out[j:], want) {
			t.Errorf("close ladder lacks %q", want)
		}
	}
	// The demo's own text for the same run draws the same ladder.
	_, demoOut, _ := runCmd("demo", "close")
	body := demoOut[strings.Index(demoOut, "    time client"):]
	if !strings.Contains(out, body) {
		t.Errorf("ladder of the demo's trace differs from the demo's own:\n%s\nwant:\n%s", out[j:], body)
	}
}

func TestLadderConn(t *testing.T) {
	p := demoJSON(t, "close")
	for _, conn := range []string{"10.0.0.1:49152-10.0.0.2:80", "10.0.0.2:80-10.0.0.1:49152", "10.0.0.1:49152->10.0.0.2:80"} {
		code, out, errs := runCmd("ladder", p, "--conn", conn, "--format", "svg")
		if code != 0 {
			t.Fatalf("--conn %s: exit %d: %s", conn, code, errs)
		}
		wellFormed(t, out)
		if !strings.Contains(out, "TIME-WAIT") || !strings.Contains(out, "LAST-ACK") {
			t.Errorf("--conn %s: SVG lacks the close's states", conn)
		}
	}
	code, _, errs := runCmd("ladder", p, "--conn", "1.2.3.4:5-6.7.8.9:10")
	if code == 0 || !strings.Contains(errs, "no connection") || !strings.Contains(errs, "10.0.0.1:49152-10.0.0.2:80") {
		t.Errorf("unknown tuple: exit %d, stderr %q; want an error listing the tuples", code, errs)
	}
	code, _, errs = runCmd("ladder", p, "--conn", "nonsense")
	if code == 0 || !strings.Contains(errs, "LOCAL-REMOTE") {
		t.Errorf("bad tuple: exit %d, stderr %q", code, errs)
	}
}

func TestLadderMalformed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.json")
	good := `{"t":0,"step":0,"host":"client","addr":"10.0.0.1","type":"host"}`
	if err := os.WriteFile(p, []byte(good+"\n{\"t\":\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd("ladder", p)
	if code == 0 || !strings.Contains(errs, "line 2") {
		t.Errorf("exit %d, stderr %q; want an error naming line 2", code, errs)
	}
	code, _, errs = runCmd("ladder", filepath.Join(t.TempDir(), "missing.json"))
	if code == 0 || errs == "" {
		t.Errorf("missing file: exit %d", code)
	}
}

// TestLadderOneSided draws a stack-style trace: one host, no steps, two
// connections.
func TestLadderOneSided(t *testing.T) {
	code, out, _ := runCmd("demo", "close", "handshake", "--format", "json")
	if code != 0 {
		t.Fatal("demo failed")
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, `"host":"client"`) {
			continue
		}
		// One host, as a stack writes: no run, no steps, no packet numbers;
		// the second run's connection gets another port.
		second := strings.Contains(l, `"run":"handshake"`)
		l = strings.NewReplacer(`"run":"close",`, "", `"run":"handshake",`, "").Replace(l)
		l = stepRe.ReplaceAllString(l, `"step":0`)
		l = pktRe.ReplaceAllString(l, "")
		if second {
			l = strings.ReplaceAll(l, ":49152", ":50000")
		}
		lines = append(lines, strings.Replace(l, `"host":"client"`, `"host":"tcpstate"`, 1))
	}
	p := filepath.Join(t.TempDir(), "stack.json")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("ladder", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Count(out, "== ") != 2 || !strings.Contains(out, "10.0.0.1:49152->10.0.0.2:80") || !strings.Contains(out, "10.0.0.1:50000->10.0.0.2:80") {
		t.Errorf("want one ladder per connection:\n%s", out)
	}
	if !strings.Contains(out, "tcpstate 10.0.0.1") || !strings.Contains(out, "10.0.0.2:80") {
		t.Errorf("want the host and the peer named:\n%s", out)
	}
	// SVG: several connections need --conn or -o.
	code, _, errs = runCmd("ladder", p, "--format", "svg")
	if code == 0 || !strings.Contains(errs, "--conn") {
		t.Errorf("several SVGs to stdout: exit %d, stderr %q", code, errs)
	}
	dir := t.TempDir()
	code, out, errs = runCmd("ladder", p, "--format", "svg", "-o", filepath.Join(dir, "c.svg"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, n := range []string{"c-1.svg", "c-2.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s not written: %v (stdout %q)", n, err, out)
		}
		wellFormed(t, string(b))
		if !strings.Contains(string(b), "SYN-SENT") {
			t.Errorf("%s lacks SYN-SENT", n)
		}
	}
}
