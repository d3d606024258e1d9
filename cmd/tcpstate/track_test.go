package main

import (
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// tpkt is one packet of a generated capture.
type tpkt struct {
	at       time.Duration
	src, dst string // "IP:PORT"
	flags    string // letters: S, A, F, R, P
	seq, ack uint32
	n        int
}

var trackT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// writeCapture writes pkts as an Ethernet pcap with pcapgo.
func writeCapture(t *testing.T, pkts []tpkt) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		sh, sp, _ := net.SplitHostPort(p.src)
		dh, dp, _ := net.SplitHostPort(p.dst)
		var spn, dpn int
		for _, c := range sp {
			spn = spn*10 + int(c-'0')
		}
		for _, c := range dp {
			dpn = dpn*10 + int(c-'0')
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.ParseIP(sh).To4(), DstIP: net.ParseIP(dh).To4()}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(spn), DstPort: layers.TCPPort(dpn), Seq: p.seq, Ack: p.ack, Window: 64000,
			SYN: strings.Contains(p.flags, "S"), ACK: strings.Contains(p.flags, "A"), FIN: strings.Contains(p.flags, "F"),
			RST: strings.Contains(p.flags, "R"), PSH: strings.Contains(p.flags, "P")}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, tcp, gopacket.Payload(make([]byte, p.n))); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: trackT0.Add(p.at), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

const (
	cA = "10.0.0.1:40000"
	cB = "10.0.0.3:40001"
	sv = "10.0.0.2:80"
)

// trackCapture: a full connection closed by the client (client
// TIME-WAIT), one the server never closes (CLOSE-WAIT for 30 s), a refused
// one, and 40 half-open connections to port 443 at 30 s.
func trackCapture(t *testing.T) string {
	ms := time.Millisecond
	p := []tpkt{
		{0, cA, sv, "S", 100, 0, 0},
		{1 * ms, sv, cA, "SA", 500, 101, 0},
		{2 * ms, cA, sv, "A", 101, 501, 0},
		{3 * ms, cA, sv, "PA", 101, 501, 100},
		{4 * ms, sv, cA, "PA", 501, 201, 300},
		{5 * ms, cA, sv, "A", 201, 801, 0},
		{100 * ms, cA, sv, "FA", 201, 801, 0},
		{101 * ms, sv, cA, "FA", 801, 202, 0},
		{102 * ms, cA, sv, "A", 202, 802, 0},

		{200 * ms, cB, sv, "S", 1000, 0, 0},
		{201 * ms, sv, cB, "SA", 7000, 1001, 0},
		{202 * ms, cB, sv, "A", 1001, 7001, 0},
		{300 * ms, cB, sv, "FA", 1001, 7001, 0},
		{301 * ms, sv, cB, "A", 7001, 1002, 0},

		{400 * ms, "10.0.0.1:40002", "10.0.0.2:81", "S", 9, 0, 0},
		{401 * ms, "10.0.0.2:81", "10.0.0.1:40002", "RA", 0, 10, 0},
	}
	for i := range 40 {
		c := "10.0.1." + itoa(1+i%20) + ":" + itoa(3000+i)
		at := 30*time.Second + time.Duration(i)*ms
		p = append(p, tpkt{at, c, "10.0.0.2:443", "S", 1, 0, 0}, tpkt{at + ms/2, "10.0.0.2:443", c, "SA", 5, 2, 0})
	}
	return writeCapture(t, p)
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + func() string { b, _ := json.Marshal(i); return string(b) }())
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var ms []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		ms = append(ms, m)
	}
	return ms
}

func byClient(ms []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range ms {
		out[m["client"].(string)] = m
	}
	return out
}

func TestTrackJSON(t *testing.T) {
	path := trackCapture(t)
	code, out, errs := runCmd("track", path, "--format", "json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ms := jsonLines(t, out)
	if len(ms) != 43 {
		t.Fatalf("%d connections, want 43", len(ms))
	}
	c := byClient(ms)
	a := c[cA]
	if a["bytes_c2s"] != 100.0 || a["bytes_s2c"] != 300.0 || a["packets_c2s"] != 6.0 || a["packets_s2c"] != 3.0 ||
		a["zeek_state"] != "SF" || a["zeek_history"] != "ShADdFf" || a["retrans_c2s"] != 0.0 {
		t.Errorf("first connection: %v", a)
	}
	if a["client_state"] != "TIME-WAIT" || a["server_state"] != "CLOSED" {
		t.Errorf("first connection states: %v %v", a["client_state"], a["server_state"])
	}
	// conntrack's TIME_WAIT is 120 s from the last ACK at 0.102 s.
	if a["conntrack_state"] != "TIME_WAIT" || a["conntrack_expire"] != 90.0 {
		t.Errorf("conntrack %v %v", a["conntrack_state"], a["conntrack_expire"])
	}
	b := c[cB]
	if b["client_state"] != "FIN-WAIT-2" || b["server_state"] != "CLOSE-WAIT" || b["conntrack_state"] != "CLOSE_WAIT" {
		t.Errorf("second connection: %v", b)
	}
	r := c["10.0.0.1:40002"]
	if r["client_state"] != "CLOSED" || r["server_state"] != "CLOSED" || r["conntrack_state"] != "" || r["zeek_state"] != "REJ" {
		t.Errorf("refused: %v", r)
	}
}

func TestTrackAt(t *testing.T) {
	path := trackCapture(t)
	code, out, errs := runCmd("track", path, "--format", "json", "--at", "0.05")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ms := jsonLines(t, out)
	if len(ms) != 1 || ms[0]["client_state"] != "ESTABLISHED" || ms[0]["server_state"] != "ESTABLISHED" {
		t.Errorf("at 0.05 s: %v", ms)
	}
	// 70 s after the start the client's TIME-WAIT (from 0.101 s) is over.
	code, out, _ = runCmd("track", path, "--format", "json", "--at", trackT0.Add(70*time.Second).Format(time.RFC3339))
	if code != 0 {
		t.Fatal(code)
	}
	if a := byClient(jsonLines(t, out))[cA]; a["client_state"] != "CLOSED" || a["ended"] != true {
		t.Errorf("at 70 s: %v", a)
	}
	if code, _, errs := runCmd("track", path, "--at", "yesterday"); code == 0 || !strings.Contains(errs, "--at") {
		t.Errorf("bad --at: exit %d %q", code, errs)
	}
}

func TestTrackModels(t *testing.T) {
	path := trackCapture(t)
	code, out, errs := runCmd("track", path, "--model", "conntrack")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"tcp      6 90 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 packets=6 bytes=100 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 packets=3 bytes=300 [ASSURED]",
		"CLOSE_WAIT src=10.0.0.3",
		"SYN_RECV src=10.0.1.1 dst=10.0.0.2 sport=3000 dport=443",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("conntrack table lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd("track", path, "--model", "ipvs")
	if code != 0 || !strings.Contains(out, "pro") || !strings.Contains(out, "SYN_RECV") ||
		!strings.Contains(out, "TCP  01:30   TIME_WAIT   10.0.0.1:40000") {
		t.Errorf("ipvs table (exit %d):\n%s", code, out)
	}
	code, out, _ = runCmd("track", path)
	if code != 0 || !strings.Contains(out, "Client-State") || !strings.Contains(out, "TIME-WAIT") {
		t.Errorf("rfc table (exit %d):\n%s", code, out)
	}
}

func TestTrackStateFilter(t *testing.T) {
	path := trackCapture(t)
	for _, spelling := range []string{"syn-recv", "SYN_RECV", "SYN-RECEIVED", "synrecv"} {
		code, out, errs := runCmd("track", path, "--format", "json", "--state", spelling)
		if code != 0 {
			t.Fatalf("%s: exit %d %s", spelling, code, errs)
		}
		ms := jsonLines(t, out)
		if len(ms) != 40 {
			t.Errorf("--state %s: %d connections, want 40", spelling, len(ms))
		}
		for _, m := range ms {
			if m["server_state"] != "SYN-RECEIVED" {
				t.Errorf("--state %s gave %v", spelling, m)
			}
		}
	}
	code, out, _ := runCmd("track", path, "--format", "json", "--state", "CLOSE_WAIT", "--model", "conntrack")
	if ms := jsonLines(t, out); code != 0 || len(ms) != 1 || ms[0]["client"] != cB {
		t.Errorf("conntrack CLOSE_WAIT filter: %v", ms)
	}
	if code, _, errs := runCmd("track", path, "--state", "sleepy"); code == 0 || !strings.Contains(errs, "sleepy") {
		t.Errorf("unknown state accepted: %d %q", code, errs)
	}
}

func TestTrackDiagnose(t *testing.T) {
	path := trackCapture(t)
	code, out, errs := runCmd("track", path, "--diagnose", "--format", "json", "--syn-flood", "30")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	kinds := map[string]map[string]any{}
	for _, m := range jsonLines(t, out) {
		kinds[m["kind"].(string)] = m
		if m["endpoint"] == "" || m["message"] == "" {
			t.Errorf("finding lacks fields: %v", m)
		}
	}
	if f := kinds["syn-flood"]; f == nil || f["endpoint"] != "10.0.0.2:443" || f["count"] != 40.0 {
		t.Errorf("syn-flood: %v\n%s", f, out)
	}
	if f := kinds["close-wait-leak"]; f == nil || f["endpoint"] != sv {
		t.Errorf("close-wait-leak: %v\n%s", f, out)
	}
	if len(kinds) != 2 {
		t.Errorf("findings %v", out)
	}
	code, out, _ = runCmd("track", path, "--diagnose", "--syn-flood", "50")
	if code != 0 || strings.Contains(out, "syn-flood") || !strings.Contains(out, "close-wait-leak") {
		t.Errorf("threshold 50 (exit %d):\n%s", code, out)
	}
}

func TestTrackLadder(t *testing.T) {
	path := trackCapture(t)
	code, out, errs := runCmd("track", path, "--ladder", cA+"-"+sv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "LAST-ACK", "TIME-WAIT", "SYN,ACK"} {
		if !strings.Contains(out, want) {
			t.Errorf("ladder lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd("track", path, "--ladder", sv+"-"+cA, "--format", "svg")
	if code != 0 || !strings.Contains(out, "<svg") || !strings.Contains(out, "TIME-WAIT") {
		t.Errorf("svg ladder (exit %d): %.200s", code, out)
	}
	checkXML(t, out)
	if code, _, errs := runCmd("track", path, "--ladder", "10.9.9.9:1-10.9.9.9:2"); code == 0 || !strings.Contains(errs, "no such connection") {
		t.Errorf("unknown connection: %d %q", code, errs)
	}
}

func checkXML(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
}

func TestTrackDiagram(t *testing.T) {
	path := trackCapture(t)
	code, out, errs := runCmd("track", path, "--diagram", "--format", "dot")
	if code != 0 || !strings.Contains(out, "digraph") {
		t.Fatalf("exit %d %s: %.300s", code, errs, out)
	}
	code, out, _ = runCmd("track", path, "--diagram")
	if code != 0 || !strings.Contains(out, "<svg") {
		t.Fatalf("svg diagram exit %d", code)
	}
	checkXML(t, out)
}

func TestTrackTimeline(t *testing.T) {
	path := trackCapture(t)
	svg := filepath.Join(t.TempDir(), "t.svg")
	code, _, errs := runCmd("track", path, "--timeline", "-o", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	checkXML(t, s)
	for _, want := range []string{"viewBox", "TIME-WAIT", "SYN-RECEIVED", "CLOSE-WAIT", "seconds since", "<polygon"} {
		if !strings.Contains(s, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}

func TestTrackBadInput(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello, this is not a capture\n"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	for _, path := range []string{filepath.Join(dir, "missing.pcap"), text, empty} {
		code, out, errs := runCmd("track", path)
		if code == 0 || out != "" || strings.Count(strings.TrimSpace(errs), "\n") != 0 || errs == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", filepath.Base(path), code, out, errs)
		}
	}
	// A capture cut in the middle of a record: the connections read are
	// shown, and stderr says what happened.
	full, _ := os.ReadFile(trackCapture(t))
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, full[:len(full)-30], 0o644)
	code, out, errs := runCmd("track", cut, "--format", "json")
	if code != 2 || len(jsonLines(t, out)) == 0 || !strings.Contains(errs, "showed the") ||
		strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("truncated capture: exit %d, %d lines, stderr %q", code, len(jsonLines(t, out)), errs)
	}
	if code, _, errs := runCmd("track", "--format", "json"); code == 0 || !strings.Contains(errs, "no capture file") {
		t.Errorf("no file: %d %q", code, errs)
	}
}

// TestTrackDamagedMiddle corrupts a record header in the middle of a
// capture: the connections before it are shown, stderr says what stopped
// the reading in one line, and the exit status is 2.
func TestTrackDamagedMiddle(t *testing.T) {
	full, err := os.ReadFile(trackCapture(t))
	if err != nil {
		t.Fatal(err)
	}
	// The classic pcap records: 24-byte file header, then 16-byte record
	// headers each followed by caplen bytes. Find the middle record.
	var offs []int
	for off := 24; off+16 <= len(full); {
		offs = append(offs, off)
		off += 16 + int(binary.LittleEndian.Uint32(full[off+8:]))
	}
	if len(offs) < 4 {
		t.Fatalf("only %d records", len(offs))
	}
	bad := append([]byte(nil), full...)
	binary.LittleEndian.PutUint32(bad[offs[len(offs)/2]+8:], 0x7fffffff) // an impossible captured length
	path := filepath.Join(t.TempDir(), "damaged.pcap")
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd("track", path, "--format", "json")
	if code != 2 || len(jsonLines(t, out)) == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "showed the") {
		t.Errorf("exit %d, %d lines, stderr %q", code, len(jsonLines(t, out)), errs)
	}
	code, out, _ = runCmd("track", path)
	if code != 2 || !strings.Contains(out, "Client-State") {
		t.Errorf("table: exit %d, stdout %q", code, out)
	}
}
