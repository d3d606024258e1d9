//go:build linux

package interop

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPcapOffload: `tcpstate serve --app echo --pcap FILE` echoes 4 MB to
// a kernel socket over a TUN device with its offloads on, then once more
// with --no-offload. With offloads, the capture must hold the segments
// as they crossed the device — TCP payloads longer than the MTU allows,
// both ways, since capturing must not turn the offloads off — and tshark,
// checking every IPv4 header and TCP checksum, must find none bad and no
// malformed packet; all the data appears in each direction. With
// --no-offload no segment is longer than the MTU allows.
func TestPcapOffload(t *testing.T) {
	need(t, "tshark", "tshark")
	for _, m := range []struct {
		name    string
		args    []string
		offload bool
	}{
		{"offload", nil, true},
		{"plain", []string{"--no-offload"}, false},
	} {
		t.Run(m.name, func(t *testing.T) { testPcapOffload(t, m.args, m.offload) })
	}
}

func testPcapOffload(t *testing.T, extra []string, offload bool) {
	ns := newNS(t, dev0)
	pcapPath := filepath.Join(t.TempDir(), "echo.pcapng")
	srv := startServe(t, ns, dev0, stack0CIDR, 7, "echo", append([]string{"--pcap", pcapPath}, extra...)...)
	c, err := dialer{ns: ns}.dial(context.Background(), stack0+":7")
	if err != nil {
		t.Fatalf("dial %s:7: %v", stack0, err)
	}
	const n = 4 << 20
	data := randomBytes(n, 7)
	got, err := echo(c, data)
	c.Close()
	if err != nil {
		t.Fatalf("echo of %d bytes: %v (got %d back)", n, err, len(got))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo of %d bytes: got %d bytes back, first difference at %d", n, len(got), firstDiff(got, data))
	}
	srv.stop() // the capture is complete once serve has ended

	// tshark runs under command's time limit (cmdTimeout). The kernel's
	// own IPv6 packets on the device (router solicitations) are left
	// out; the plain read below covers them. One line per TCP packet: source, IP total length, frame length, TCP
	// payload length, the two checksum statuses (tshark: 0 bad, 1 good,
	// 2 unverified), and the first expert message, which may be a
	// complaint (see complaint) or only TCP analysis (a window update).
	cmd := command(t, ns, "tshark", "-n", "-r", pcapPath,
		"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-Y", "ip && tcp", "-T", "fields", "-E", "separator=,", "-E", "occurrence=f",
		"-e", "ip.src", "-e", "ip.len", "-e", "frame.len", "-e", "tcp.len",
		"-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "_ws.expert.message")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", pcapPath, err, stderr.String())
	}
	const mtuPayload = 1500 - 20 - 20 // tun0's MTU less the IPv4 and TCP headers
	var (
		packets, bad        int
		sent, recv          int // TCP payload bytes from and to the stack
		maxSent, maxRecv    int
		largeSent, largeRcv int // segments longer than the MTU allows
	)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, ",", 7)
		if len(f) != 7 {
			t.Fatalf("tshark line %q: want 7 fields", line)
		}
		packets++
		ipLen, err1 := strconv.Atoi(f[1])
		frameLen, err2 := strconv.Atoi(f[2])
		tcpLen, err3 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("tshark line %q: not a TCP/IPv4 packet", line)
		}
		if ipLen != frameLen || f[4] != "1" || f[5] != "1" || complaint(f[6]) {
			bad++
			if bad <= 10 {
				t.Errorf("packet %d: ip.len %d, frame.len %d, checksum status IP %s TCP %s (want 1, good), expert %q",
					packets, ipLen, frameLen, f[4], f[5], f[6])
			}
		}
		if f[0] == stack0 {
			sent += tcpLen
			maxSent = max(maxSent, tcpLen)
			if tcpLen > mtuPayload {
				largeSent++
			}
		} else {
			recv += tcpLen
			maxRecv = max(maxRecv, tcpLen)
			if tcpLen > mtuPayload {
				largeRcv++
			}
		}
	}
	t.Logf("%d packets; from the stack %d bytes, largest segment %d (%d above %d); to it %d bytes, largest %d (%d above)",
		packets, sent, maxSent, largeSent, mtuPayload, recv, maxRecv, largeRcv)
	if bad > 0 {
		t.Errorf("%d of %d packets have a bad length or checksum, or a tshark warning", bad, packets)
	}
	// Retransmissions may add to these, but nothing may be missing.
	if sent < n || recv < n {
		t.Errorf("the capture holds %d payload bytes from the stack and %d to it; want at least %d each way", sent, recv, n)
	}
	if offload {
		if largeSent == 0 || largeRcv == 0 {
			t.Errorf("with offloads on, the capture holds %d segments from the stack and %d to it above %d bytes of payload; want some each way (the tap must keep the offload path)",
				largeSent, largeRcv, mtuPayload)
		}
	} else if maxSent > mtuPayload || maxRecv > mtuPayload {
		t.Errorf("with --no-offload, segments of %d and %d bytes of payload; want at most %d", maxSent, maxRecv, mtuPayload)
	}
	// And a plain read: nothing malformed.
	plain, err := command(t, ns, "tshark", "-n", "-r", pcapPath).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", pcapPath, err, plain)
	}
	if strings.Contains(strings.ToLower(string(plain)), "malformed") {
		t.Errorf("tshark reports malformed packets")
	}
}

// complaint reports whether a tshark expert message says a packet is
// damaged — malformed, a bad checksum, a length that does not fit —
// rather than analysing the TCP stream (window updates, duplicate ACKs,
// retransmissions, which a transfer over a device with a finite queue
// may show).
func complaint(msg string) bool {
	msg = strings.ToLower(msg)
	for _, w := range []string{"malformed", "checksum", "bad", "length", "exceeds", "bogus"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}
