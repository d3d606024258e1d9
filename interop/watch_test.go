//go:build linux

package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/trace"
)

// TestWatch: `tcpstate serve` with --admin, --trace and --pcap serving
// curl. While it runs, `tcpstate conns` and `tcpstate stats` read its
// admin endpoint and /metrics answers in Prometheus's format; once it is
// stopped, the trace holds every connection's states and segments and
// tshark reads the capture without a malformed packet.
func TestWatch(t *testing.T) {
	need(t, "curl", "curl")
	need(t, "tshark", "tshark")
	ns := newNS(t, dev0)
	dir := t.TempDir()
	tracePath, pcapPath := filepath.Join(dir, "serve.jsonl"), filepath.Join(dir, "serve.pcapng")
	const adminAddr = "127.0.0.1:9180"
	cpuPath, memPath := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	srv := startServe(t, ns, dev0, stack0CIDR, 80, "http",
		"--admin", adminAddr, "--trace", tracePath, "--pcap", pcapPath,
		"--cpuprofile", cpuPath, "--memprofile", memPath)

	const requests = 3
	for range requests {
		var body syncBuffer
		if stderr, err := curl(t, ns, "http://"+stack0+"/bytes/5000", &body, 10*time.Second); err != nil {
			t.Fatalf("curl: %v: %s", err, stderr)
		}
	}

	conns := tcpstateOut(t, ns, "conns", "--admin", adminAddr)
	for _, want := range []string{"LISTEN", ":80 ", "Total:"} {
		if !strings.Contains(conns, want) {
			t.Errorf("tcpstate conns lacks %q:\n%s", want, conns)
		}
	}
	stats := tcpstateOut(t, ns, "stats", "--admin", adminAddr)
	passive := ""
	for _, line := range strings.Split(stats, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "PassiveOpens" {
			passive = f[1]
		}
	}
	if passive != "3" {
		t.Errorf("PassiveOpens %q after %d requests:\n%s", passive, requests, stats)
	}
	var metrics syncBuffer
	if stderr, err := curl(t, ns, "http://"+adminAddr+"/metrics", &metrics, 10*time.Second); err != nil {
		t.Fatalf("curl /metrics: %v: %s", err, stderr)
	}
	for _, want := range []string{"tcpstate_Tcp_PassiveOpens 3", `tcpstate_transitions_total{cause="rcv SYN",from="LISTEN",to="SYN-RECEIVED"} 3`} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	dot := tcpstateOut(t, ns, "diagram", "--admin", adminAddr, "--format", "dot")
	if !strings.Contains(dot, "digraph") || !strings.Contains(dot, "×3") {
		t.Errorf("tcpstate diagram --admin: no counts of 3 in the DOT:\n%s", dot)
	}

	srv.stop()

	for _, p := range []string{cpuPath, memPath} {
		// A profile is a gzipped protocol buffer.
		if b, err := os.ReadFile(p); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("profile %s: %v, %d bytes; want a gzipped pprof profile", filepath.Base(p), err, len(b))
		}
	}

	f, err := os.Open(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := trace.ReadJSON(f)
	f.Close()
	if err != nil {
		t.Fatalf("trace: %v", err)
	}
	established, segsOut := 0, 0
	for _, r := range recs {
		if r.Kind == trace.KindState && r.To.String() == "ESTABLISHED" && r.Conn.Local.Port() == 80 {
			established++
		}
		if r.Kind == trace.KindSegmentOut {
			segsOut++
		}
	}
	if established != requests || segsOut < requests*4 {
		t.Errorf("trace: %d connections established, %d segments sent; want %d and at least %d", established, segsOut, requests, requests*4)
	}

	ladder := tcpstateOut(t, ns, "ladder", tracePath)
	if n := strings.Count(ladder, "SYN-RECEIVED"); n < requests {
		t.Errorf("tcpstate ladder shows SYN-RECEIVED %d times for %d connections:\n%s", n, requests, ladder)
	}
	for _, want := range []string{"seq=", "LAST-ACK", "CLOSED"} {
		if !strings.Contains(ladder, want) {
			t.Errorf("tcpstate ladder lacks %q:\n%s", want, ladder)
		}
	}
	svgs := tcpstateOut(t, ns, "ladder", tracePath, "--format", "svg", "-o", filepath.Join(dir, "conn.svg"))
	for i := 1; i <= requests; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("conn-%d.svg", i)))
		if err != nil || !strings.Contains(string(b), "<svg") {
			t.Errorf("ladder --format svg: conn-%d.svg: %v (output %q)", i, err, svgs)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-r", pcapPath).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", pcapPath, err, out)
	}
	text := string(out)
	if strings.Contains(strings.ToLower(text), "malformed") {
		t.Errorf("tshark reports malformed packets:\n%s", text)
	}
	if n := strings.Count(text, "[SYN]"); n != requests {
		t.Errorf("tshark shows %d SYNs, want %d:\n%s", n, requests, text)
	}
	codes, err := exec.CommandContext(ctx, "tshark", "-n", "-r", pcapPath, "-Y", "http.response", "-T", "fields", "-e", "http.response.code").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -Y http.response: %v\n%s", err, codes)
	}
	if n := strings.Count(string(codes), "200"); n != requests {
		t.Errorf("tshark decodes %d HTTP 200 responses, want %d:\n%s", n, requests, codes)
	}
}

// tcpstateOut runs the tcpstate binary in ns with args and returns its
// output, failing the test if it fails.
func tcpstateOut(t *testing.T, ns *netns.NS, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := ns.Command(ctx, binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpstate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
