package link_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/internal/stacktest"
	"github.com/tcpstate/tcpstate/internal/testenv"
	"github.com/tcpstate/tcpstate/link"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/stack"
	"github.com/tcpstate/tcpstate/track/capture"
)

// readCapture reads every packet of the capture at path with
// capture.Reader.
func readCapture(t *testing.T, path string) ([]capture.Packet, capture.Stats) {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []capture.Packet
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out, r.Stats()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *p)
	}
}

// closedBoth reports whether pkts hold a FIN from each end of every
// connection from client and the ACK of the second FIN.
func closedBoth(pkts []capture.Packet, servers []netip.AddrPort) bool {
	for _, s := range servers {
		fins, acked := 0, false
		for _, p := range pkts {
			if p.Src != s && p.Dst != s {
				continue
			}
			if fins == 2 && p.Flags.Has(header.ACK) {
				acked = true
			}
			if p.Flags.Has(header.FIN) {
				fins++
			}
		}
		if !acked {
			return false
		}
	}
	return true
}

// TestTapNgStackExchange records what a stack sends and receives over a
// pipe, an IPv4 and an IPv6 connection with data and both FINs and a
// connection attempt refused with RST, as pcapng; then reads the file
// back with capture.Reader, with gopacket's pcapgo.NgReader, and with
// tshark if it is installed.
func TestTapNgStackExchange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "exchange.pcapng")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	ea, eb := pipe.New(pipe.Config{})
	tap := link.TapNg(ea, bufio.NewWriter(file))
	a, err := stack.New(tap, stack.Options{Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := stack.New(eb, stack.Options{Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64")}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stacktest.Echo(t, b, ":80")

	servers := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.2:80"), netip.MustParseAddrPort("[2001:db8::2]:80")}
	var clients []netip.AddrPort
	for _, s := range servers {
		c, err := a.DialContext(ctx, "tcp", s.String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c.LocalAddr().(*net.TCPAddr).AddrPort())
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	refused := netip.MustParseAddrPort("192.0.2.2:81")
	if c, err := a.DialContext(ctx, "tcp", refused.String()); err == nil {
		c.Close()
		t.Fatal("a dial to a port with no listener succeeded")
	}
	// Wait for both closes to finish, reading what the tap has recorded.
	var pkts []capture.Packet
	for {
		if err := tap.Flush(); err != nil {
			t.Fatal(err)
		}
		if pkts, _ = readCapture(t, path); closedBoth(pkts, servers) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the connections did not close; captured %+v", pkts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Close() // closes the tap, which flushes
	if err := tap.Err(); err != nil {
		t.Fatal(err)
	}
	pkts, st := readCapture(t, path)
	if st.Frames != int64(len(pkts)) || st.TCP != int64(len(pkts)) {
		t.Errorf("Stats %+v: every frame should be a TCP segment", st)
	}

	// What capture.Reader decoded.
	for i, s := range servers {
		var conn []capture.Packet
		for _, p := range pkts {
			if (p.Src == clients[i] && p.Dst == s) || (p.Src == s && p.Dst == clients[i]) {
				conn = append(conn, p)
			}
		}
		if len(conn) < 6 {
			t.Fatalf("%v: %d packets", s, len(conn))
		}
		if conn[0].Flags != header.SYN || conn[0].Src != clients[i] || !conn[0].Options.HasMSS {
			t.Errorf("%v: first packet %+v, want the client's SYN", s, conn[0])
		}
		if conn[1].Flags != header.SYN|header.ACK || conn[1].Ack != conn[0].Seq+1 {
			t.Errorf("%v: second packet %+v, want the SYN,ACK", s, conn[1])
		}
		sent, got, fins := 0, 0, 0
		for _, p := range conn {
			if p.Src == clients[i] {
				sent += p.PayloadLen
			} else {
				got += p.PayloadLen
			}
			if p.Flags.Has(header.FIN) {
				fins++
			}
			if p.Truncated {
				t.Errorf("%v: truncated %+v", s, p)
			}
		}
		if sent != 5 || got != 5 || fins != 2 {
			t.Errorf("%v: %d bytes sent, %d received, %d FINs; want 5, 5, 2", s, sent, got, fins)
		}
	}
	rst := false
	for _, p := range pkts {
		if p.Src == refused && p.Flags.Has(header.RST) {
			rst = true
		}
	}
	if !rst {
		t.Error("no RST from the port with no listener")
	}

	// gopacket's reader sees the same packets and timestamps.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ng, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	if ng.LinkType() != layers.LinkTypeRaw {
		t.Errorf("pcapgo: link type %v, want raw", ng.LinkType())
	}
	if intf, err := ng.Interface(0); err != nil || intf.TimestampResolution != 9 || intf.SnapLength != link.PcapSnapLen {
		t.Errorf("pcapgo: interface %+v, %v; want nanoseconds and snap length %d", intf, err, link.PcapSnapLen)
	}
	if si := ng.SectionInfo(); si.Application != "tcpstate" {
		t.Errorf("pcapgo: application %q", si.Application)
	}
	for i := 0; ; i++ {
		data, ci, err := ng.ReadPacketData()
		if err == io.EOF {
			if i != len(pkts) {
				t.Errorf("pcapgo read %d packets, capture.Reader %d", i, len(pkts))
			}
			break
		}
		if err != nil {
			t.Fatalf("pcapgo: packet %d: %v", i, err)
		}
		if i >= len(pkts) {
			continue
		}
		if !ci.Timestamp.Equal(pkts[i].T) || ci.Length != pkts[i].Wire || len(data) != ci.Length {
			t.Errorf("pcapgo: packet %d: %v, %d of %d bytes; capture.Reader: %v, %d", i, ci.Timestamp, len(data), ci.Length, pkts[i].T, pkts[i].Wire)
		}
	}

	tsharkCheck(t, path, pkts, clients)
}

// tsharkCheck has tshark decode the capture: no malformed packets, good
// checksums, the same TCP flags, and the direction of each packet
// (outbound from the tapped stack's addresses, inbound to them).
func tsharkCheck(t *testing.T, path string, pkts []capture.Packet, clients []netip.AddrPort) {
	tshark := testenv.Tool(t, "tshark", "tshark")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, "-n", "-r", path,
		"-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-T", "fields", "-E", "separator=,", "-E", "aggregator=;",
		"-e", "frame.packet_flags_direction", "-e", "tcp.flags", "-e", "tcp.checksum.status",
		"-e", "_ws.malformed", "-e", "_ws.expert.severity")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "appears to be damaged") {
		t.Fatalf("tshark: %s", stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(pkts) {
		t.Fatalf("tshark lists %d packets, want %d:\n%s", len(lines), len(pkts), out)
	}
	ours := map[netip.Addr]bool{}
	for _, c := range clients {
		ours[c.Addr()] = true
	}
	for i, line := range lines {
		f := strings.Split(line, ",")
		if len(f) != 5 {
			t.Fatalf("tshark line %q", line)
		}
		dir, flags, sum, malformed := f[0], f[1], f[2], f[3]
		wantDir := uint64(1) // inbound
		if ours[pkts[i].Src.Addr()] {
			wantDir = 2
		}
		if d, err := strconv.ParseUint(strings.TrimPrefix(dir, "0x"), 16, 32); err != nil || d != wantDir {
			t.Errorf("packet %d (%v -> %v): direction %q, want %d", i+1, pkts[i].Src, pkts[i].Dst, dir, wantDir)
		}
		if v, err := strconv.ParseUint(strings.TrimPrefix(flags, "0x"), 16, 16); err != nil || header.TCPFlags(v) != pkts[i].Flags {
			t.Errorf("packet %d: tshark flags %q, capture.Reader %v", i+1, flags, pkts[i].Flags)
		}
		if sum != "1" {
			t.Errorf("packet %d: TCP checksum status %q, want 1 (good)", i+1, sum)
		}
		if malformed != "" {
			t.Errorf("packet %d: tshark finds it malformed: %s", i+1, line)
		}
		// Expert info of severity error (PI_ERROR, 0x00800000); notes
		// and warnings such as "Connection reset (RST)" are normal.
		for _, sev := range strings.Split(f[4], ";") {
			if v, _ := strconv.ParseUint(sev, 0, 32); v >= 0x00800000 {
				t.Errorf("packet %d: tshark reports an error: %s", i+1, line)
			}
		}
	}
	// And the summary view, which names malformed packets.
	summary, err := exec.CommandContext(ctx, tshark, "-n", "-r", path).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if strings.Contains(string(summary), "Malformed") {
		t.Errorf("tshark:\n%s", summary)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("tshark timed out")
	}
	t.Logf("tshark:\n%s", summary)
}
