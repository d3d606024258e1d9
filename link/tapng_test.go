package link

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"time"
)

// TestTapNgBytes checks the pcapng a tap writes, byte for byte, against
// the layout of draft-ietf-opsawg-pcapng written out by hand.
func TestTapNgBytes(t *testing.T) {
	in := []byte{0x45, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	out1 := []byte{0x60, 0xaa, 0xbb}
	out2 := []byte{0x45, 0xcc, 0xdd, 0xee}
	f := &fakeEndpoint{toRead: [][]byte{in}}
	var buf bytes.Buffer
	tap := TapNg(f, &buf)
	clock := time.Unix(1700000000, 123456789)
	tap.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	bufs, sizes := [][]byte{make([]byte, 4)}, []int{0}
	if n, err := tap.ReadPackets(bufs, sizes); n != 1 || err != nil || sizes[0] != 10 {
		t.Fatalf("ReadPackets = %d, %v, size %d", n, err, sizes[0])
	}
	if n, err := tap.WritePackets([][]byte{out1, out2, {}}); n != 2 || err == nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}

	var want []byte
	u32 := func(v uint32) { want = binary.LittleEndian.AppendUint32(want, v) }
	u16 := func(v uint16) { want = binary.LittleEndian.AppendUint16(want, v) }
	// Section Header Block: 12 + 16 + 12 (shb_userappl "tcpstate") + 4
	// (end of options) = 44 bytes.
	u32(0x0a0d0d0a)
	u32(44)
	u32(0x1a2b3c4d)
	u16(1)
	u16(0)
	u32(0xffffffff)
	u32(0xffffffff)
	u16(4)
	u16(8)
	want = append(want, "tcpstate"...)
	u32(0)
	u32(44)
	// Interface Description Block: 12 + 8 + 12 (if_name) + 8
	// (if_tsresol) + 4 = 44 bytes.
	u32(1)
	u32(44)
	u16(101)
	u16(0)
	u32(262144)
	u16(2)
	u16(8)
	want = append(want, "tcpstate"...)
	u16(9)
	u16(1)
	want = append(want, 9, 0, 0, 0)
	u32(0)
	u32(44)
	// Enhanced Packet Blocks: 32 + data padded + 12 (epb_flags, end).
	epb := func(ns uint64, data []byte, orig int, dir uint32) {
		padded := (len(data) + 3) &^ 3
		total := uint32(32 + padded + 12)
		u32(6)
		u32(total)
		u32(0)
		u32(uint32(ns >> 32))
		u32(uint32(ns))
		u32(uint32(len(data)))
		u32(uint32(orig))
		want = append(want, data...)
		want = append(want, make([]byte, padded-len(data))...)
		u16(2)
		u16(4)
		u32(dir)
		u32(0)
		u32(total)
	}
	epb(1700000001123456789, in[:4], 10, 1) // inbound, cut to the buffer
	epb(1700000002123456789, out1, 3, 2)    // outbound
	epb(1700000002123456789, out2, 4, 2)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("capture\n got %x\nwant %x", buf.Bytes(), want)
	}
}

// TestTapNgWriteError checks that a failing writer stops the capture, not
// the link, and that Flush and Close report it.
func TestTapNgWriteError(t *testing.T) {
	f := &fakeEndpoint{}
	tap := TapNg(f, &failWriter{after: 3}) // the header and one packet's first two writes
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
	if err := tap.Flush(); err == nil {
		t.Fatal("Flush after a write error returned nil")
	}
	if err := tap.Close(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Close = %v, want disk full", err)
	}
}

// BenchmarkTapNg records 1500-byte packets, in batches of 32, as pcapng
// into a buffered io.Discard.
func BenchmarkTapNg(b *testing.B) {
	pkts := make([][]byte, 32)
	for i := range pkts {
		pkts[i] = make([]byte, 1500)
		pkts[i][0] = 0x45
	}
	tap := TapNg(discardEndpoint{}, bufio.NewWriterSize(io.Discard, 1<<16))
	b.SetBytes(1500)
	b.ReportAllocs()
	for sent := 0; sent < b.N; sent += len(pkts) {
		tap.WritePackets(pkts[:min(len(pkts), b.N-sent)])
	}
	if err := tap.Close(); err != nil {
		b.Fatal(err)
	}
}

// discardEndpoint sends everything nowhere.
type discardEndpoint struct{}

func (discardEndpoint) MTU() int                                 { return 1500 }
func (discardEndpoint) ReadPackets([][]byte, []int) (int, error) { return 0, ErrClosed }
func (discardEndpoint) WritePackets(pkts [][]byte) (int, error)  { return len(pkts), nil }
func (discardEndpoint) Close() error                             { return nil }
