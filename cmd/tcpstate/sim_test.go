package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/trace"
)

func TestSimFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--loss", "150%"},
		{"--loss", "1.5"},
		{"--loss", "-0.1"},
		{"--loss", "lots"},
		{"--reorder", "5%%"},
		{"--dup", "NaN"},
		{"--corrupt", "2"},
		{"--cc", "vegas"},
		{"--sack", "maybe"},
		{"--mss", "10"},
		{"--mss", "70000"},
		{"--mss", "x"},
		{"--bytes", "-5"},
		{"--bytes", "1.5"},
		{"--bytes", "10XB"},
		{"--rate", "fast"},
		{"--rate", "-1M"},
		{"--delay", "-1s"},
		{"--delay", "soon"},
		{"--timeout", "0"},
		{"--seed", "-1"},
		{"--queue", "-3"},
		{"--buffer", "2GiB"},
		{"extra"},
		{"--bogus"},
	} {
		code, out, errs := runCmd(append([]string{"sim"}, args...)...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", args, out)
		}
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "tcpstate: ") {
			t.Errorf("%v: stderr %q, want one line", args, errs)
		}
	}
	_, _, errs := runCmd("sim", "--loss", "150%")
	if !strings.Contains(errs, "--loss") {
		t.Errorf("stderr %q does not name the flag", errs)
	}
}

func TestSimFlagForms(t *testing.T) {
	var f fraction
	for in, want := range map[string]fraction{"5%": 0.05, "0.05": 0.05, "0": 0, "100%": 1, " 12.5% ": 0.125} {
		if err := f.Set(in); err != nil || f != want {
			t.Errorf("fraction %q = %v, %v; want %v", in, f, err, want)
		}
	}
	var b byteCount
	for in, want := range map[string]byteCount{"1000": 1000, "10MB": 10_000_000, "64KiB": 65536, "1M": 1_000_000, "2GiB": 2 << 30, "1.5k": 1500} {
		if err := b.Set(in); err != nil || b != want {
			t.Errorf("bytes %q = %v, %v; want %v", in, b, err, want)
		}
	}
	var r bitRate
	for in, want := range map[string]bitRate{"10M": 10e6, "1.5Gbit": 1.5e9, "100kbps": 100e3, "0": 0, "64Kibit/s": 65536} {
		if err := r.Set(in); err != nil || r != want {
			t.Errorf("rate %q = %v, %v; want %v", in, r, err, want)
		}
	}
}

func simJSON(t *testing.T, args ...string) (int, simSummary, string) {
	t.Helper()
	code, out, errs := runCmd(append([]string{"sim", "--json"}, args...)...)
	var s simSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %v: %q (stderr %q)", args, err, out, errs)
	}
	return code, s, errs
}

func TestSimClean(t *testing.T) {
	code, out, errs := runCmd("sim", "--bytes", "200k", "--delay", "5ms")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errs, out)
	}
	for _, want := range []string{"duration ", "goodput ", "segments sent", "retransmitted: 0 by timeout, 0 fast",
		"client state CLOSED", "server state CLOSED", "TIME-WAIT", "matches what was sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	_, again, _ := runCmd("sim", "--bytes", "200k", "--delay", "5ms")
	if again != out {
		t.Error("two runs with the same flags differ")
	}
	code, s, _ := simJSON(t, "--bytes", "200k", "--delay", "5ms")
	if code != 0 || !s.Match || !s.Finished || s.Received != 200_000 || s.Client.DataBytes != 200_000 {
		t.Errorf("exit %d, summary %+v", code, s)
	}
	// A 5 ms link moves 200 kB in a few round trips: goodput is well
	// above 10 Mbit/s and the duration a fraction of a second.
	if s.GoodputBits < 10e6 || s.Duration <= 0 || s.Duration > 1 {
		t.Errorf("goodput %v bit/s over %v s", s.GoodputBits, s.Duration)
	}
	if s.Client.State != "CLOSED" || s.Server.State != "CLOSED" || s.Client.Err != "" || s.Server.Err != "" {
		t.Errorf("final states %s (%s) / %s (%s)", s.Client.State, s.Client.Err, s.Server.State, s.Server.Err)
	}
}

func TestSimLossy(t *testing.T) {
	for _, args := range [][]string{
		{"--loss", "5%", "--seed", "2"},
		{"--loss", "0.02", "--reorder", "5%", "--dup", "2%", "--corrupt", "2%", "--seed", "7", "--sack", "off", "--cc", "newreno"},
		{"--loss", "3%", "--rate", "10M", "--queue", "50", "--mss", "536", "--ws", "off", "--ts", "off"},
	} {
		code, s, errs := simJSON(t, append([]string{"--bytes", "300k", "--delay", "10ms"}, args...)...)
		if code != 0 || !s.Match {
			t.Errorf("%v: exit %d (%s): %d of %d bytes", args, code, strings.TrimSpace(errs), s.Received, s.Bytes)
			continue
		}
		if s.Network.Lost+s.Network.BadPackets == 0 {
			t.Errorf("%v: nothing was lost", args)
		}
		if rtx := s.Client.RtxTimeout + s.Client.RtxFast + s.Client.RtxOther; rtx == 0 {
			t.Errorf("%v: losses but no retransmissions", args)
		}
		if s.Client.DataBytes <= s.Bytes {
			t.Errorf("%v: %d data bytes sent for %d: retransmissions not counted", args, s.Client.DataBytes, s.Bytes)
		}
	}
}

func TestSimTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	code, _, errs := runCmd("sim", "--bytes", "20k", "--trace", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
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
	kinds := map[trace.Kind]int{}
	for _, r := range recs {
		kinds[r.Kind]++
	}
	for _, k := range []trace.Kind{trace.KindHost, trace.KindState, trace.KindSegmentOut, trace.KindSegmentIn} {
		if kinds[k] == 0 {
			t.Errorf("no %s records in %d", k, len(recs))
		}
	}
	code, _, errs = runCmd("sim", "--bytes", "1k", "--trace", filepath.Join(t.TempDir(), "no", "such", "dir", "x"))
	if code != 1 || !strings.HasPrefix(errs, "tcpstate: ") || strings.Count(errs, "\n") != 1 {
		t.Errorf("unwritable trace: exit %d, stderr %q", code, errs)
	}
}

func TestSimTimeout(t *testing.T) {
	// Every packet is lost: the SYN never gets through.
	code, out, errs := runCmd("sim", "--loss", "100%", "--timeout", "5s")
	if code != 2 || !strings.Contains(errs, "did not finish within 5s") || strings.Count(errs, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "did not finish") || !strings.Contains(out, "INCOMPLETE") {
		t.Errorf("summary does not say so:\n%s", out)
	}
	// A transfer that needs more time than it is given.
	code, _, errs = runCmd("sim", "--bytes", "1M", "--rate", "1M", "--timeout", "2s")
	if code != 2 || !strings.Contains(errs, "did not finish") {
		t.Errorf("slow link: exit %d, stderr %q", code, errs)
	}
}

func TestSimMismatch(t *testing.T) {
	tamper = func(off int64, p []byte) {
		if off <= 5000 && 5000 < off+int64(len(p)) {
			p[5000-off] ^= 0x20
		}
	}
	defer func() { tamper = nil }()
	code, out, errs := runCmd("sim", "--bytes", "20k")
	if code != 2 || !strings.Contains(errs, "differ") || !strings.Contains(errs, "byte 5000") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "DIFFERS") {
		t.Errorf("summary does not say the data differs:\n%s", out)
	}
}
