package link

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/internal/testenv"
)

// fakeEndpoint hands out the packets in toRead and keeps what is written.
type fakeEndpoint struct {
	toRead  [][]byte
	written [][]byte
	closed  bool
}

func (f *fakeEndpoint) MTU() int { return 1500 }

func (f *fakeEndpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	if f.closed {
		return 0, ErrClosed
	}
	n := 0
	for n < len(bufs) && n < len(sizes) && len(f.toRead) > 0 {
		copy(bufs[n], f.toRead[0])
		sizes[n] = len(f.toRead[0])
		f.toRead = f.toRead[1:]
		n++
	}
	return n, nil
}

func (f *fakeEndpoint) WritePackets(pkts [][]byte) (int, error) {
	for i, p := range pkts {
		if len(p) == 0 {
			return i, errors.New("empty packet")
		}
		f.written = append(f.written, append([]byte(nil), p...))
	}
	return len(pkts), nil
}

func (f *fakeEndpoint) Close() error { f.closed = true; return nil }

// udp4 builds an IPv4 UDP datagram with correct checksums.
func udp4(src, dst [4]byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 28+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64
	p[9] = 17
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], header.FinishChecksum(header.Checksum(p[:20], 0)))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	pseudo := make([]byte, 12)
	copy(pseudo, src[:])
	copy(pseudo[4:], dst[:])
	pseudo[9] = 17
	binary.BigEndian.PutUint16(pseudo[10:], uint16(8+len(payload)))
	c := header.FinishChecksum(header.Checksum(p[20:], header.Checksum(pseudo, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[26:], c)
	return p
}

// udp6 builds an IPv6 UDP datagram with a correct checksum.
func udp6(src, dst [16]byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 48+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
	p[6] = 17
	p[7] = 64
	copy(p[8:], src[:])
	copy(p[24:], dst[:])
	binary.BigEndian.PutUint16(p[40:], sport)
	binary.BigEndian.PutUint16(p[42:], dport)
	binary.BigEndian.PutUint16(p[44:], uint16(8+len(payload)))
	copy(p[48:], payload)
	pseudo := make([]byte, 40)
	copy(pseudo, src[:])
	copy(pseudo[16:], dst[:])
	binary.BigEndian.PutUint32(pseudo[32:], uint32(8+len(payload)))
	pseudo[39] = 17
	c := header.FinishChecksum(header.Checksum(p[40:], header.Checksum(pseudo, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(p[46:], c)
	return p
}

func TestTapBytes(t *testing.T) {
	in := []byte{0x45, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	out1 := []byte{0x60, 0xaa, 0xbb}
	out2 := []byte{0x45, 0xcc}
	f := &fakeEndpoint{toRead: [][]byte{in}}
	var buf bytes.Buffer
	tap := Tap(f, &buf)
	clock := time.Unix(1700000000, 123456789)
	tap.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	if tap.MTU() != 1500 {
		t.Fatalf("MTU = %d", tap.MTU())
	}
	// The read buffer is too short for the packet: the record keeps what
	// fit and the full length.
	bufs := [][]byte{make([]byte, 4)}
	sizes := []int{0}
	if n, err := tap.ReadPackets(bufs, sizes); n != 1 || err != nil || sizes[0] != 10 {
		t.Fatalf("ReadPackets = %d, %v, size %d", n, err, sizes[0])
	}
	// Only the packets the endpoint sent are recorded.
	if n, err := tap.WritePackets([][]byte{out1, out2, {}}); n != 2 || err == nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if !f.closed {
		t.Fatal("Close did not close the wrapped endpoint")
	}

	want := []byte{
		// Global header.
		0xd4, 0xc3, 0xb2, 0xa1, // magic
		2, 0, 4, 0, // version 2.4
		0, 0, 0, 0, // thiszone
		0, 0, 0, 0, // sigfigs
		0x00, 0x00, 0x04, 0x00, // snaplen 262144
		101, 0, 0, 0, // LINKTYPE_RAW
		// Read: 1700000001.123456, 4 of 10 bytes.
		0x01, 0xf1, 0x53, 0x65, 0x40, 0xe2, 0x01, 0x00, 4, 0, 0, 0, 10, 0, 0, 0,
		0x45, 1, 2, 3,
		// Written, at the next tick: both packets share its timestamp.
		0x02, 0xf1, 0x53, 0x65, 0x40, 0xe2, 0x01, 0x00, 3, 0, 0, 0, 3, 0, 0, 0,
		0x60, 0xaa, 0xbb,
		0x02, 0xf1, 0x53, 0x65, 0x40, 0xe2, 0x01, 0x00, 2, 0, 0, 0, 2, 0, 0, 0,
		0x45, 0xcc,
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("capture\n got %x\nwant %x", buf.Bytes(), want)
	}
}

func TestTapEmptyCapture(t *testing.T) {
	var buf bytes.Buffer
	tap := Tap(&fakeEndpoint{}, &buf)
	tap.Close()
	if buf.Len() != 24 {
		t.Fatalf("an empty capture is %d bytes, want the 24-byte header", buf.Len())
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestTapWriteErrorDoesNotBreakLink(t *testing.T) {
	f := &fakeEndpoint{}
	tap := Tap(f, &failWriter{after: 2})
	for range 3 {
		if n, err := tap.WritePackets([][]byte{{0x45}}); n != 1 || err != nil {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
	}
	if len(f.written) != 3 {
		t.Fatalf("endpoint got %d packets, want 3", len(f.written))
	}
	if err := tap.Err(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Err = %v, want disk full", err)
	}
}

// TestTapTshark writes a capture of real IPv4 and IPv6 UDP datagrams and
// has tshark, if it is installed, decode it.
func TestTapTshark(t *testing.T) {
	tshark := testenv.Tool(t, "tshark", "tshark")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p4 := udp4([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1234, 40000, []byte("hello"))
	var a6, b6 [16]byte
	a6[0], a6[1], a6[15] = 0xfd, 0x00, 1
	b6[0], b6[1], b6[15] = 0xfd, 0x00, 2
	p6 := udp6(a6, b6, 4321, 40001, []byte("over six"))

	path := filepath.Join(t.TempDir(), "cap.pcap")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(file)
	tap := Tap(&fakeEndpoint{toRead: [][]byte{p6}}, w)
	tap.WritePackets([][]byte{p4})
	bufs, sizes := [][]byte{make([]byte, 1500)}, []int{0}
	tap.ReadPackets(bufs, sizes)
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	file.Close()

	cmd := exec.CommandContext(ctx, tshark, "-n", "-r", path, "-o", "udp.check_checksum:TRUE",
		"-o", "ip.check_checksum:TRUE")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r: %v\n%s%s", err, out, stderr.Bytes())
	}
	// And the checksums, which tshark checks only when asked.
	sums, err := exec.CommandContext(ctx, tshark, "-n", "-r", path, "-o", "udp.check_checksum:TRUE",
		"-o", "ip.check_checksum:TRUE", "-T", "fields",
		"-e", "ip.checksum.status", "-e", "udp.checksum.status").Output()
	if err != nil {
		t.Fatalf("tshark -T fields: %v", err)
	}
	if got := strings.Fields(string(sums)); strings.Join(got, " ") != "1 1 1" {
		t.Errorf("tshark checksum status %q, want 1 (good) for the IPv4 header and both UDP datagrams", got)
	}
	text := string(out)
	t.Logf("tshark:\n%s", text)
	if strings.Contains(text, "Malformed") || strings.Contains(text, "Bad") {
		t.Fatalf("tshark found a problem:\n%s", text)
	}
	for _, want := range []string{"10.0.0.1 → 10.0.0.2", "fd00::1 → fd00::2", "1234 → 40000", "4321 → 40001"} {
		if !strings.Contains(text, want) {
			t.Errorf("tshark output lacks %q", want)
		}
	}
	if lines := strings.Count(strings.TrimSpace(text), "\n") + 1; lines != 2 {
		t.Errorf("tshark shows %d packets, want 2", lines)
	}
}
