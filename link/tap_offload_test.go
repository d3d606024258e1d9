package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/internal/testenv"
	"github.com/tcpstate/tcpstate/seqnum"
)

// fakeOffloader is an Offloader in memory: ReadPacketsOffload hands out
// toRead with their trusted flags, WriteOffload keeps each packet joined,
// with its mss. onWrite, if set, runs inside WriteOffload.
type fakeOffloader struct {
	fakeEndpoint
	offErr  error
	mu      sync.Mutex
	toRead  []offPkt
	written []offPkt
	mss     []int
	onWrite func()
}

type offPkt struct {
	b       []byte
	trusted bool
}

func (f *fakeOffloader) Offload() error { return f.offErr }

func (f *fakeOffloader) ReadPacketsOffload(bufs [][]byte, sizes []int, trusted []bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for n < min(len(bufs), len(sizes), len(trusted)) && len(f.toRead) > 0 {
		copy(bufs[n], f.toRead[0].b)
		sizes[n] = len(f.toRead[0].b)
		trusted[n] = f.toRead[0].trusted
		f.toRead = f.toRead[1:]
		n++
	}
	return n, nil
}

func (f *fakeOffloader) WriteOffload(pieces [][]byte, mss int) error {
	if f.offErr != nil {
		return f.offErr
	}
	if f.onWrite != nil {
		f.onWrite()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written = append(f.written, offPkt{b: bytes.Join(pieces, nil)})
	f.mss = append(f.mss, mss)
	return nil
}

var _ Offloader = (*fakeOffloader)(nil)

// ngRecord is an Enhanced Packet Block read back.
type ngRecord struct {
	data []byte
	orig int
	dir  uint32
}

// ngRecords parses the Enhanced Packet Blocks of a capture TapNg wrote,
// checking every block's framing.
func ngRecords(t *testing.T, b []byte) []ngRecord {
	t.Helper()
	le := binary.LittleEndian
	var out []ngRecord
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("capture ends in a %d-byte block", len(b))
		}
		typ, n := le.Uint32(b), int(le.Uint32(b[4:]))
		if n < 12 || n%4 != 0 || n > len(b) || int(le.Uint32(b[n-4:])) != n {
			t.Fatalf("block of type %#x with bad length %d (%d bytes left)", typ, n, len(b))
		}
		if typ == ngEnhancedPacket {
			capLen, orig := int(le.Uint32(b[20:])), int(le.Uint32(b[24:]))
			padded := (capLen + 3) &^ 3
			if 28+padded+16 != n {
				t.Fatalf("packet block of %d bytes for %d captured bytes", n, capLen)
			}
			opt := b[28+padded:]
			if le.Uint16(opt) != ngOptEPBFlags || le.Uint16(opt[2:]) != 4 {
				t.Fatalf("packet block without epb_flags first: %x", opt)
			}
			out = append(out, ngRecord{data: bytes.Clone(b[28 : 28+capLen]), orig: orig, dir: le.Uint32(opt[4:])})
		}
		b = b[n:]
	}
	return out
}

var (
	offA4, offB4 = netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	offA6, offB6 = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
)

// tcpPacket builds an IP packet carrying a TCP segment with n bytes of
// payload, its checksum complete or (partial) holding the pseudo-header
// sum, as a stack writes it to an Offloader and the kernel hands it over
// with NEEDS_CSUM.
func tcpPacket(t *testing.T, src, dst netip.Addr, seq uint32, n int, partial bool) []byte {
	t.Helper()
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i*7 + int(seq))
	}
	f := header.TCPFields{SrcPort: 40000, DstPort: 80, Seq: seqnum.Value(seq), Ack: 1, Flags: header.ACK | header.PSH, Window: 512}
	b := make([]byte, 60+n)
	build := header.BuildPacket
	if partial {
		build = header.BuildPacketPartial
	}
	m, err := build(b, src, dst, 64, &f, nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b[:m]
}

// checkValid fails unless p is a whole IP packet whose length field counts
// it and whose IPv4 header and TCP checksums are right.
func checkValid(t *testing.T, what string, p []byte) {
	t.Helper()
	var pkt header.Packet
	if err := header.ParsePacket(p, &pkt); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	switch p[0] >> 4 {
	case 4:
		if got := int(binary.BigEndian.Uint16(p[2:])); got != len(p) {
			t.Errorf("%s: IPv4 total length %d in %d bytes", what, got, len(p))
		}
	case 6:
		if got := int(binary.BigEndian.Uint16(p[4:])); got != len(p)-40 {
			t.Errorf("%s: IPv6 payload length %d in %d bytes", what, got, len(p))
		}
	}
}

// tcpSum returns a TCP packet's checksum field.
func tcpSum(p []byte) uint16 {
	ip := 40
	if p[0]>>4 == 4 {
		ip = int(p[0]&0x0f) * 4
	}
	return binary.BigEndian.Uint16(p[ip+16:])
}

// TestTapOffloadIsOffloaderIff: a stack takes the tap's offload path
// (a type assertion, then Offload() == nil) exactly when it would take
// the wrapped endpoint's, and the tap reports the wrapped endpoint's
// reason when its offloads are off.
func TestTapOffloadIsOffloaderIff(t *testing.T) {
	offNow := func(ep Endpoint) bool {
		o, ok := ep.(Offloader)
		return ok && o.Offload() == nil
	}
	reason := errors.New("offloads turned off by option")
	for _, c := range []struct {
		name  string
		inner Endpoint
	}{
		{"plain endpoint", &fakeEndpoint{}},
		{"offloads on", &fakeOffloader{}},
		{"offloads off", &fakeOffloader{offErr: reason}},
	} {
		for _, ng := range []bool{false, true} {
			var tap *TapEndpoint
			if ng {
				tap = TapNg(c.inner, &bytes.Buffer{})
			} else {
				tap = Tap(c.inner, &bytes.Buffer{})
			}
			if got, want := offNow(tap), offNow(c.inner); got != want {
				t.Errorf("%s (pcapng %v): tap uses offloads %v, inner %v", c.name, ng, got, want)
			}
			err := tap.Offload()
			switch o, ok := c.inner.(Offloader); {
			case !ok:
				if !errors.Is(err, ErrNoOffload) {
					t.Errorf("%s: Offload() = %v, want ErrNoOffload", c.name, err)
				}
				if werr := tap.WriteOffload([][]byte{{0x45}}, 0); !errors.Is(werr, ErrNoOffload) {
					t.Errorf("%s: WriteOffload = %v, want ErrNoOffload", c.name, werr)
				}
			case err != o.Offload():
				t.Errorf("%s: Offload() = %v, want the inner %v", c.name, err, o.Offload())
			}
		}
	}
}

// TestTapOffloadPlainInner: on an endpoint without offloads,
// ReadPacketsOffload is ReadPackets trusting nothing, and records.
func TestTapOffloadPlainInner(t *testing.T) {
	p := tcpPacket(t, offA4, offB4, 1, 100, false)
	var buf bytes.Buffer
	tap := TapNg(&fakeEndpoint{toRead: [][]byte{p}}, &buf)
	bufs, sizes, trusted := [][]byte{make([]byte, 1500)}, []int{0}, []bool{true}
	if n, err := tap.ReadPacketsOffload(bufs, sizes, trusted); n != 1 || err != nil || sizes[0] != len(p) || trusted[0] {
		t.Fatalf("ReadPacketsOffload = %d, %v, size %d, trusted %v", n, err, sizes[0], trusted[0])
	}
	tap.Close()
	recs := ngRecords(t, buf.Bytes()[88:])
	if len(recs) != 1 || !bytes.Equal(recs[0].data, p) || recs[0].dir != ngFlagInbound {
		t.Fatalf("records %+v, want the one packet inbound", recs)
	}
}

// TestTapOffloadRecords drives a tap over a fake Offloader: large
// segments written in pieces (IPv4 and IPv6, partial checksums), packets
// read with and without the link's word for their checksums, and plain
// packets. Each is recorded once, in order, with its direction, its
// lengths, and valid lengths and checksums where the link completes
// them; what the stack and the link hold is never changed.
func TestTapOffloadRecords(t *testing.T) {
	inner := &fakeOffloader{}
	var buf bytes.Buffer
	tap := TapNg(inner, &buf)

	type want struct {
		pkt   []byte // what the record must hold
		orig  int
		dir   uint32
		valid bool // lengths and checksums must verify
	}
	var wants []want

	// Writes: a 60000-byte IPv4 segment in three pieces, as the stack's
	// joinRun leaves it, and an IPv6 one in one piece.
	big4 := tcpPacket(t, offA4, offB4, 1000, 60000, true)
	big6 := tcpPacket(t, offA6, offB6, 5000, 40000, true)
	for _, w := range []struct {
		pieces [][]byte
		mss    int
	}{
		{[][]byte{big4[:40], big4[40:20000], big4[20000:]}, 1448},
		{[][]byte{big6}, 1428},
		{[][]byte{tcpPacket(t, offA4, offB4, 9, 0, true)}, 0}, // a bare ACK
	} {
		orig := bytes.Join(w.pieces, nil)
		keep := make([][]byte, len(w.pieces))
		for i, p := range w.pieces {
			keep[i] = bytes.Clone(p)
		}
		if err := tap.WriteOffload(w.pieces, w.mss); err != nil {
			t.Fatalf("WriteOffload: %v", err)
		}
		for i := range w.pieces {
			if !bytes.Equal(w.pieces[i], keep[i]) {
				t.Fatalf("WriteOffload changed piece %d of the caller's packet", i)
			}
		}
		got := inner.written[len(inner.written)-1]
		if !bytes.Equal(got.b, orig) || inner.mss[len(inner.mss)-1] != w.mss {
			t.Fatalf("the link got a different packet or mss %d (want %d)", inner.mss[len(inner.mss)-1], w.mss)
		}
		wants = append(wants, want{orig, len(orig), ngFlagOutbound, true})
	}
	// The recorded copies differ from the partial packets only in the
	// TCP checksum.
	if header.TCPChecksumOK(offA4, offB4, big4[20:]) {
		t.Fatal("the partial packet already has a valid checksum; the test proves nothing")
	}

	// Reads: as the kernel hands them over.
	kernelPartial := tcpPacket(t, offB4, offA4, 77, 50000, true) // NEEDS_CSUM
	kernelValid := tcpPacket(t, offB6, offA6, 88, 30000, false)  // DATA_VALID
	untrustedBad := tcpPacket(t, offB4, offA4, 99, 1000, true)   // partial yet not vouched for
	udpPartial := udp4([4]byte{10, 9, 0, 1}, [4]byte{10, 9, 0, 2}, 53, 4000, []byte("answer"))
	udpSum := header.PseudoHeaderSum(offB4, offA4, 17, 8+6)
	binary.BigEndian.PutUint16(udpPartial[26:], uint16(udpSum))
	inner.toRead = []offPkt{{kernelPartial, true}, {kernelValid, true}, {untrustedBad, false}, {udpPartial, true}}
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, MaxOffloadPacket)
	}
	sizes, trusted := make([]int, 8), make([]bool, 8)
	n, err := tap.ReadPacketsOffload(bufs, sizes, trusted)
	if n != 4 || err != nil {
		t.Fatalf("ReadPacketsOffload = %d, %v", n, err)
	}
	for i, p := range [][]byte{kernelPartial, kernelValid, untrustedBad, udpPartial} {
		if !bytes.Equal(bufs[i][:sizes[i]], p) {
			t.Errorf("ReadPacketsOffload changed packet %d handed to the caller", i)
		}
	}
	wants = append(wants,
		want{kernelPartial, len(kernelPartial), ngFlagInbound, true},
		want{kernelValid, len(kernelValid), ngFlagInbound, true},
		want{untrustedBad, len(untrustedBad), ngFlagInbound, false},
		want{udpPartial, len(udpPartial), ngFlagInbound, false})

	// A packet cut to a short buffer is recorded cut, as it came.
	inner.toRead = []offPkt{{kernelPartial, true}}
	short := [][]byte{make([]byte, 100)}
	if n, _ := tap.ReadPacketsOffload(short, sizes[:1], trusted[:1]); n != 1 || sizes[0] != len(kernelPartial) {
		t.Fatalf("short read = %d, size %d", n, sizes[0])
	}
	wants = append(wants, want{kernelPartial[:100], len(kernelPartial), ngFlagInbound, false})

	// And the plain path through the same tap.
	plain := tcpPacket(t, offA4, offB4, 3, 1000, false)
	if n, err := tap.WritePackets([][]byte{plain}); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	wants = append(wants, want{plain, len(plain), ngFlagOutbound, true})
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}

	recs := ngRecords(t, buf.Bytes())
	if len(recs) != len(wants) {
		t.Fatalf("%d records, want %d", len(recs), len(wants))
	}
	for i, w := range wants {
		r := recs[i]
		what := fmt.Sprintf("record %d", i)
		if r.dir != w.dir || r.orig != w.orig || len(r.data) != len(w.pkt) {
			t.Errorf("%s: direction %d, %d of %d bytes; want %d, %d of %d", what, r.dir, len(r.data), r.orig, w.dir, len(w.pkt), w.orig)
			continue
		}
		if w.valid {
			checkValid(t, what, r.data)
		}
		// Everything but the checksum field is as it crossed.
		d := bytes.Clone(r.data)
		p := bytes.Clone(w.pkt)
		if p[0]>>4 == 4 && p[9] == 17 {
			d[26], d[27], p[26], p[27] = 0, 0, 0, 0
		} else if len(p) == w.orig {
			ip := 40
			if p[0]>>4 == 4 {
				ip = 20
			}
			d[ip+16], d[ip+17], p[ip+16], p[ip+17] = 0, 0, 0, 0
		}
		if !bytes.Equal(d, p) {
			t.Errorf("%s differs from the packet that crossed beyond its checksum", what)
		}
	}
	// Which checksums were completed: the partial ones the link finishes
	// or vouched for; not the complete one, the unvouched one, nor the
	// cut one.
	if tcpSum(recs[4].data) != tcpSum(kernelValid) {
		t.Errorf("a checksum the kernel verified was rewritten")
	}
	if tcpSum(recs[5].data) != tcpSum(untrustedBad) {
		t.Errorf("an unvouched-for packet's checksum was rewritten: the capture must show it as it came")
	}
	if !bytes.Equal(recs[7].data, kernelPartial[:100]) {
		t.Errorf("a cut packet was changed")
	}
	c := binary.BigEndian.Uint16(recs[6].data[26:])
	pseudo := make([]byte, 12)
	copy(pseudo, []byte{10, 9, 0, 1, 10, 9, 0, 2, 0, 17, 0, 14})
	if got := header.FinishChecksum(header.Checksum(recs[6].data[20:], header.Checksum(pseudo, 0))); c == 0 || got != 0 {
		t.Errorf("the partial UDP checksum was not completed: field %#04x, check %#04x", c, got)
	}
}

// TestTapOffloadOrder: WriteOffload holds the tap's lock across the
// link's write, so a reply the link delivers while the write is still
// in progress is recorded after the packet it answers.
func TestTapOffloadOrder(t *testing.T) {
	inner := &fakeOffloader{}
	var buf bytes.Buffer
	tap := TapNg(inner, &buf)
	reply := tcpPacket(t, offB4, offA4, 1, 0, true)
	readDone := make(chan struct{})
	heldDuringWrite := false
	inner.onWrite = func() {
		heldDuringWrite = !tap.mu.TryLock()
		if !heldDuringWrite {
			tap.mu.Unlock()
		}
		inner.mu.Lock()
		inner.toRead = []offPkt{{reply, true}}
		inner.mu.Unlock()
		// The reply is read while the write is in progress; without the
		// lock it would be recorded now, before the write.
		go func() {
			defer close(readDone)
			bufs := [][]byte{make([]byte, MaxOffloadPacket)}
			tap.ReadPacketsOffload(bufs, []int{0}, []bool{false})
		}()
		time.Sleep(20 * time.Millisecond)
	}
	sent := tcpPacket(t, offA4, offB4, 1, 30000, true)
	if err := tap.WriteOffload([][]byte{sent}, 1448); err != nil {
		t.Fatal(err)
	}
	select {
	case <-readDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not finish")
	}
	tap.Close()
	if !heldDuringWrite {
		t.Error("the tap's lock was not held across the link's WriteOffload")
	}
	recs := ngRecords(t, buf.Bytes())
	if len(recs) != 2 || recs[0].dir != ngFlagOutbound || recs[1].dir != ngFlagInbound || recs[0].orig != len(sent) {
		t.Fatalf("records %d, want the 30000-byte segment out, then the reply in", len(recs))
	}
}

// TestTapOffloadPcap: the classic pcap tap records offloaded segments
// whole too, with the original length.
func TestTapOffloadPcap(t *testing.T) {
	inner := &fakeOffloader{}
	var buf bytes.Buffer
	tap := Tap(inner, &buf)
	big := tcpPacket(t, offA6, offB6, 1, 64000, true)
	if err := tap.WriteOffload([][]byte{big[:60], big[60:]}, 1428); err != nil {
		t.Fatal(err)
	}
	tap.Close()
	b := buf.Bytes()
	if len(b) != 24+16+len(big) {
		t.Fatalf("capture of %d bytes, want %d", len(b), 24+16+len(big))
	}
	if c, o := binary.LittleEndian.Uint32(b[32:]), binary.LittleEndian.Uint32(b[36:]); int(c) != len(big) || int(o) != len(big) {
		t.Fatalf("record lengths %d/%d, want %d", c, o, len(big))
	}
	checkValid(t, "pcap record", b[40:])
}

// TestTapOffloadTshark writes large offloaded segments, both ways, IPv4
// and IPv6, through a pcapng tap, and has tshark check every checksum:
// none bad, nothing malformed, lengths as written.
func TestTapOffloadTshark(t *testing.T) {
	tshark := testenv.Tool(t, "tshark", "tshark")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inner := &fakeOffloader{}
	path := filepath.Join(t.TempDir(), "off.pcapng")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tap := TapNg(inner, bufio.NewWriter(file))
	out4 := tcpPacket(t, offA4, offB4, 1000, 65535-40, true)
	out6 := tcpPacket(t, offA6, offB6, 2000, 65535-60, true)
	in4 := tcpPacket(t, offB4, offA4, 3000, 30000, true)
	in6 := tcpPacket(t, offB6, offA6, 4000, 20000, true)
	tap.WriteOffload([][]byte{out4[:40], out4[40:]}, 1448)
	tap.WriteOffload([][]byte{out6}, 1428)
	inner.toRead = []offPkt{{in4, true}, {in6, true}}
	bufs := [][]byte{make([]byte, MaxOffloadPacket), make([]byte, MaxOffloadPacket)}
	if n, _ := tap.ReadPacketsOffload(bufs, make([]int, 2), make([]bool, 2)); n != 2 {
		t.Fatalf("read %d packets, want 2", n)
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	file.Close()

	cmd := exec.CommandContext(ctx, tshark, "-n", "-r", path, "-o", "tcp.check_checksum:TRUE",
		"-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "separator=,",
		"-e", "frame.len", "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "tcp.len", "-e", "_ws.expert.message")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s%s", err, out, stderr.Bytes())
	}
	text := strings.TrimSpace(string(out))
	t.Logf("tshark (frame.len,ip.checksum.status,tcp.checksum.status,tcp.len,expert):\n%s", text)
	want := []string{
		fmt.Sprintf("%d,1,1,%d,", len(out4), 65535-40),
		fmt.Sprintf("%d,,1,%d,", len(out6), 65535-60),
		fmt.Sprintf("%d,1,1,%d,", len(in4), 30000),
		fmt.Sprintf("%d,,1,%d,", len(in6), 20000),
	}
	lines := strings.Split(text, "\n")
	if len(lines) != len(want) {
		t.Fatalf("tshark shows %d packets, want %d", len(lines), len(want))
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) {
			t.Errorf("packet %d: %q, want %q... (status 1 = good)", i+1, l, want[i])
		}
		if low := strings.ToLower(l); strings.Contains(low, "malformed") || strings.Contains(low, "bad") || strings.Contains(low, "incorrect") {
			t.Errorf("packet %d: tshark complains: %q", i+1, l)
		}
	}
}
