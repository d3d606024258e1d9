//go:build linux

package interop

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/netns"
	"github.com/tcpstate/tcpstate/internal/testenv"
)

// The impaired transfers: a download from `serve --app http` and an echo
// through `serve --app echo`, so that the stack both sends and receives
// through the impairment.
const (
	impairedDownload = 8_000_000
	impairedEcho     = 2 << 20
)

// impairedTransfers downloads impairedDownload bytes from the http app at
// httpAddr:80 with curl, and echoes impairedEcho bytes through the echo
// app at echoAddr:7 on a kernel socket, checking both byte for byte.
func impairedTransfers(t *testing.T, ns *netns.NS, httpAddr, echoAddr string) {
	t.Helper()
	url := fmt.Sprintf("http://%s/bytes/%d", httpAddr, impairedDownload)
	w := newPatternChecker()
	start := time.Now()
	if stderr, err := curl(t, ns, url, w, 25*time.Second); err != nil {
		t.Fatalf("curl %s: %v: %s (after %d bytes)", url, err, stderr, w.n)
	}
	w.check(t, "curl "+url, impairedDownload)
	t.Logf("download of %d bytes: %v", impairedDownload, time.Since(start).Round(time.Millisecond))

	c, err := dialer{ns: ns}.dial(context.Background(), echoAddr+":7")
	if err != nil {
		t.Fatalf("dial %s:7: %v", echoAddr, err)
	}
	defer c.Close()
	data := randomBytes(impairedEcho, 5)
	start = time.Now()
	got, err := echo(c, data)
	if err != nil {
		t.Fatalf("echo of %d bytes: %v (got %d back)", len(data), err, len(got))
	}
	if i := firstDiff(got, data); i >= 0 {
		t.Errorf("echo of %d bytes: got %d back, first difference at byte %d", len(data), len(got), i)
	}
	t.Logf("echo of %d bytes: %v", len(data), time.Since(start).Round(time.Millisecond))
}

// iptables adds a rule in ns, failing the test (in CI) or skipping it
// (elsewhere) if iptables or its statistic match is missing.
func iptables(t *testing.T, ns *netns.NS, args ...string) {
	t.Helper()
	out, err := ns.Run("iptables", args...)
	if err == nil {
		return
	}
	msg := fmt.Sprintf("iptables %s: %v", strings.Join(args, " "), err)
	if strings.Contains(out, "statistic") {
		msg = "iptables lacks the statistic match (the kernel needs xt_statistic, CONFIG_NETFILTER_XT_MATCH_STATISTIC): " + msg
	}
	testenv.Unavailable(t, "%s", msg)
}

// TestLoss: with iptables dropping 2% of the packets at random each way
// on the TUN device (this kernel has no sch_netem for tc netem), an 8 MB
// curl download and a 2 MB echo arrive byte for byte.
func TestLoss(t *testing.T) {
	need(t, "curl", "curl")
	need(t, "iptables", "iptables")
	ns := newNS(t, dev0, dev1)
	startServe(t, ns, dev0, stack0CIDR, 80, "http")
	startServe(t, ns, dev1, stack1CIDR, 7, "echo")
	for _, dev := range []string{dev0, dev1} {
		iptables(t, ns, "-A", "INPUT", "-i", dev, "-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP")
		iptables(t, ns, "-A", "OUTPUT", "-o", dev, "-m", "statistic", "--mode", "random", "--probability", "0.02", "-j", "DROP")
	}
	impairedTransfers(t, ns, stack0, stack1)
	out := ns.MustRun(t, "iptables", "-n", "-v", "-x", "-L")
	dropped := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" {
			n, _ := strconv.Atoi(f[0])
			dropped += n
		}
	}
	t.Logf("iptables dropped %d packets", dropped)
	if dropped == 0 {
		t.Errorf("the iptables rules dropped nothing; the test did not test loss:\n%s", out)
	}
}
