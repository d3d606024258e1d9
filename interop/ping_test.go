//go:build linux

package interop

import (
	"strings"
	"testing"
)

// TestPing: the kernel's ping gets ICMP echo replies from the stack's
// address, for small and full-sized packets.
func TestPing(t *testing.T) {
	need(t, "ping", "iputils-ping")
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 80, "discard")
	// 1472 bytes of payload fill a 1500-byte packet.
	for _, size := range []string{"56", "0", "1472"} {
		out, err := command(t, ns, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", "-s", size, stack0).CombinedOutput()
		if err != nil {
			t.Errorf("ping -s %s %s: %v\n%s", size, stack0, err, out)
			continue
		}
		if !strings.Contains(string(out), " 5 received") {
			t.Errorf("ping -s %s %s: want 5 replies:\n%s", size, stack0, out)
		}
	}
}
