package header

import (
	"bytes"
	"errors"
	"testing"
)

// tcpHeader returns a 20-byte TCP header with the given data offset (in
// words) followed by extra bytes.
func tcpHeader(dataOffWords int, extra ...byte) []byte {
	b := make([]byte, TCPMinLen, TCPMinLen+len(extra))
	b[12] = byte(dataOffWords << 4)
	return append(b, extra...)
}

// wantErr checks that err is an *Error of the given layer, kind and offset.
func wantErr(t *testing.T, name string, err error, layer string, kind ErrorKind, offset int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: got %v, want a *header.Error of kind %v", name, err, kind)
		return
	}
	if e.Kind != kind || e.Layer != layer || e.Offset != offset {
		t.Errorf("%s: got %s/%v at %d (%q), want %s/%v at %d", name, e.Layer, e.Kind, e.Offset, err, layer, kind, offset)
	}
	sentinels := map[ErrorKind]error{
		KindTruncated: ErrTruncated, KindBadVersion: ErrBadVersion,
		KindBadHeaderLength: ErrBadHeaderLength, KindBadTotalLength: ErrBadTotalLength,
		KindBadDataOffset: ErrBadDataOffset, KindBadOptionLength: ErrBadOptionLength,
		KindBadChecksum: ErrBadChecksum, KindNotTCP: ErrNotTCP, KindFragment: ErrFragment,
		KindShortBuffer: ErrShortBuffer, KindBadAddress: ErrBadAddress,
	}
	for k, s := range sentinels {
		if got := errors.Is(err, s); got != (k == kind) {
			t.Errorf("%s: errors.Is(%q, %v) = %v", name, err, s, got)
		}
	}
}

func TestParseTCPTruncated(t *testing.T) {
	full := tcpHeader(5)
	for n := range TCPMinLen {
		_, err := ParseTCP(full[:n])
		wantErr(t, "short", err, "tcp", KindTruncated, n)
	}
	if _, err := ParseTCP(full); err != nil {
		t.Errorf("20 bytes: %v", err)
	}
}

func TestParseTCPDataOffset(t *testing.T) {
	for off := range 16 {
		for _, size := range []int{20, 40, 60, 61} {
			b := tcpHeader(off, make([]byte, size-TCPMinLen)...)
			tcp, err := ParseTCP(b)
			if off < 5 || off*4 > size {
				wantErr(t, "data offset", err, "tcp", KindBadDataOffset, 12)
				var e *Error
				if errors.As(err, &e) && e.Value != off {
					t.Errorf("offset %d size %d: Value %d", off, size, e.Value)
				}
				continue
			}
			if err != nil {
				t.Fatalf("offset %d size %d: %v", off, size, err)
			}
			if tcp.DataOffset() != off*4 || len(tcp.OptionBytes()) != off*4-20 || len(tcp.Payload()) != size-off*4 {
				t.Errorf("offset %d size %d: DataOffset %d options %d payload %d", off, size,
					tcp.DataOffset(), len(tcp.OptionBytes()), len(tcp.Payload()))
			}
		}
	}
}

func TestTCPErrorString(t *testing.T) {
	_, err := ParseTCP(tcpHeader(3))
	if got, want := err.Error(), "tcp: bad data offset 3 (at byte 12)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = ParseTCP(make([]byte, 12))
	if got, want := err.Error(), "tcp: truncated: need 20 bytes, have 12"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := ErrBadChecksum.Error(), "header: bad checksum"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	err = ParseTCPOptions([]byte{2}, new(TCPOptions))
	if got, want := err.Error(), "tcp option: bad option length (at byte 1)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, &Error{Layer: "tcp option", Kind: KindBadOptionLength}) {
		t.Errorf("layered Is failed")
	}
	if errors.Is(err, &Error{Layer: "tcp", Kind: KindBadOptionLength}) {
		t.Errorf("layered Is matched the wrong layer")
	}
	if got := ErrorKind(200).String(); got != "ErrorKind(200)" {
		t.Errorf("unknown kind: %q", got)
	}
}

func TestTCPAccessors(t *testing.T) {
	b := []byte{
		0xc0, 0x00, 0x00, 0x50, // ports 49152 → 80
		0x01, 0x02, 0x03, 0x04, // seq
		0xff, 0xff, 0xff, 0xf0, // ack
		0x6f, 0x12, // data offset 6, reserved bits set, SYN|ACK
		0xfa, 0xf0, // window
		0x12, 0x34, // checksum
		0x00, 0x07, // urgent
		1, 1, 1, 0, // NOP NOP NOP EOL
		'h', 'i',
	}
	tcp, err := ParseTCP(b)
	if err != nil {
		t.Fatal(err)
	}
	if tcp.SrcPort() != 49152 || tcp.DstPort() != 80 || tcp.Seq() != 0x01020304 ||
		tcp.Ack() != 0xfffffff0 || tcp.DataOffset() != 24 || tcp.Flags() != SYN|ACK ||
		tcp.Window() != 64240 || tcp.Checksum() != 0x1234 || tcp.Urgent() != 7 ||
		!bytes.Equal(tcp.OptionBytes(), []byte{1, 1, 1, 0}) || string(tcp.Payload()) != "hi" {
		t.Errorf("accessors wrong: %v %v %v %v %v %v %v %v %v %x %q", tcp.SrcPort(), tcp.DstPort(), tcp.Seq(),
			tcp.Ack(), tcp.DataOffset(), tcp.Flags(), tcp.Window(), tcp.Checksum(), tcp.Urgent(),
			tcp.OptionBytes(), tcp.Payload())
	}
	// Views that never went through ParseTCP clamp rather than panic.
	short := TCP(tcpHeader(15))
	if short.OptionBytes() == nil || len(short.OptionBytes()) != 0 || short.Payload() != nil {
		t.Errorf("unparsed view: options %x payload %x", short.OptionBytes(), short.Payload())
	}
	if TCP(tcpHeader(2)).OptionBytes() != nil {
		t.Errorf("data offset 2: options not nil")
	}
}

func TestParseTCPOptionsValid(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want TCPOptions
	}{
		{"empty", nil, TCPOptions{}},
		{"eol", []byte{0, 2, 4, 5}, TCPOptions{}},
		{"nops", []byte{1, 1, 1, 1}, TCPOptions{}},
		{"mss", []byte{2, 4, 0x05, 0xb4}, TCPOptions{MSS: 1460, HasMSS: true}},
		{"ws", []byte{1, 3, 3, 14}, TCPOptions{WindowScale: 14, HasWindowScale: true}},
		{"ws raw", []byte{3, 3, 200, 0}, TCPOptions{WindowScale: 200, HasWindowScale: true}},
		{"sackok", []byte{4, 2}, TCPOptions{SACKPermitted: true}},
		{"ts", []byte{1, 1, 8, 10, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff},
			TCPOptions{TSVal: 1, TSEcr: 0xffffffff, HasTimestamps: true}},
		{"sack1", []byte{1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2},
			TCPOptions{SACKBlocks: [4]SACKBlock{{1, 2}}, NumSACK: 1}},
		{"sack4", []byte{5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8},
			TCPOptions{SACKBlocks: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}, NumSACK: 4}},
		{"unknown skipped", []byte{30, 4, 9, 9, 2, 4, 0, 100}, TCPOptions{MSS: 100, HasMSS: true}},
		{"unknown len 2", []byte{254, 2, 4, 2}, TCPOptions{SACKPermitted: true}},
		{"last wins", []byte{2, 4, 0, 1, 2, 4, 0, 2}, TCPOptions{MSS: 2, HasMSS: true}},
		{"second sack replaces first", []byte{5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 5, 10, 0, 0, 0, 5, 0, 0, 0, 6},
			TCPOptions{SACKBlocks: [4]SACKBlock{{5, 6}}, NumSACK: 1}},
		{"after eol ignored", []byte{4, 2, 0, 2, 1}, TCPOptions{SACKPermitted: true}},
		{"linux syn", []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 3, 0xe8, 0, 0, 0, 0, 1, 3, 3, 7},
			TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1000, HasTimestamps: true,
				WindowScale: 7, HasWindowScale: true}},
	}
	for _, c := range cases {
		// Start from a dirty struct: parsing must reset it.
		o := TCPOptions{MSS: 9, HasMSS: true, NumSACK: 3, SACKPermitted: true, SACKBlocks: [4]SACKBlock{{9, 9}}}
		if err := ParseTCPOptions(c.b, &o); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if o != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, o, c.want)
		}
	}
}

func TestParseTCPOptionsMalformed(t *testing.T) {
	cases := []struct {
		name   string
		b      []byte
		offset int // of the length byte
		value  int
	}{
		{"missing length", []byte{2}, 1, -1},
		{"missing length after nop", []byte{1, 1, 1, 8}, 4, -1},
		{"unknown len 0", []byte{30, 0, 0, 0}, 1, 0},
		{"unknown len 1", []byte{30, 1, 0, 0}, 1, 1},
		{"unknown overrun", []byte{30, 5, 0, 0}, 1, 5},
		{"mss len 0", []byte{2, 0, 0, 0}, 1, 0},
		{"mss len 1", []byte{2, 1, 0, 0}, 1, 1},
		{"mss len 3", []byte{2, 3, 0, 1}, 1, 3},
		{"mss len 5", []byte{2, 5, 0, 0, 0, 0, 0, 0}, 1, 5},
		{"mss overrun", []byte{1, 2, 4, 5}, 2, 4},
		{"ws len 2", []byte{3, 2, 1, 1}, 1, 2},
		{"ws len 4", []byte{3, 4, 7, 0}, 1, 4},
		{"ws overrun", []byte{1, 1, 3, 3}, 3, 3},
		{"sackok len 3", []byte{4, 3, 0, 1}, 1, 3},
		{"sackok len 1", []byte{4, 1, 1, 1}, 1, 1},
		{"ts len 8", []byte{8, 8, 0, 0, 0, 0, 0, 0}, 1, 8},
		{"ts len 12", []byte{8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 12},
		{"ts overrun", []byte{1, 1, 8, 10, 0, 0, 0, 0}, 3, 10},
		{"sack no blocks", []byte{5, 2, 1, 1}, 1, 2},
		{"sack len 9", []byte{5, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, 1, 9},
		{"sack len 11", []byte{5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 11},
		{"sack 5 blocks", append([]byte{5, 42}, make([]byte, 40)...), 1, 42},
		{"sack overrun", []byte{1, 1, 5, 18, 0, 0, 0, 0, 0, 0, 0, 0}, 3, 18},
		{"good then bad", []byte{2, 4, 5, 0xb4, 3, 3, 7, 8, 1}, 8, 1},
	}
	for _, c := range cases {
		var o TCPOptions
		err := ParseTCPOptions(c.b, &o)
		wantErr(t, c.name, err, "tcp option", KindBadOptionLength, c.offset)
		var e *Error
		if errors.As(err, &e) && e.Value != c.value {
			t.Errorf("%s: Value %d, want %d", c.name, e.Value, c.value)
		}
		// Through TCP.Options the offset counts from the TCP header.
		b := append(c.b, make([]byte, (4-len(c.b)%4)%4)...)
		if len(b) > TCPMaxOptionsLen {
			continue
		}
		seg := tcpHeader(5+len(b)/4, b...)
		if _, err := ParseTCP(seg); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = TCP(seg).Options(&o)
		if len(b) == len(c.b) {
			wantErr(t, c.name+" via Options", err, "tcp option", KindBadOptionLength, c.offset+TCPMinLen)
		} else if err == nil {
			t.Errorf("%s via Options: no error", c.name)
		}
	}
}

func TestTCPOptionsLayout(t *testing.T) {
	blocks := [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	cases := []struct {
		name string
		o    *TCPOptions
		want string // hex
		nsck int    // blocks expected to survive
	}{
		{"nil", nil, "", 0},
		{"none", &TCPOptions{}, "", 0},
		{"mss", &TCPOptions{MSS: 1460, HasMSS: true}, "020405b4", 0},
		{"ws", &TCPOptions{WindowScale: 7, HasWindowScale: true}, "01030307", 0},
		{"sackok", &TCPOptions{SACKPermitted: true}, "01010402", 0},
		{"ts", &TCPOptions{TSVal: 1, TSEcr: 2, HasTimestamps: true}, "0101080a0000000100000002", 0},
		{"sackok+ts", &TCPOptions{SACKPermitted: true, TSVal: 1, TSEcr: 2, HasTimestamps: true},
			"0402080a0000000100000002", 0},
		{"linux syn", &TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1000, HasTimestamps: true,
			WindowScale: 7, HasWindowScale: true}, "020405b40402080a000003e80000000001030307", 0},
		{"syn no ts", &TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, WindowScale: 7, HasWindowScale: true},
			"020405b40101040201030307", 0},
		{"sack1", &TCPOptions{SACKBlocks: blocks, NumSACK: 1}, "0101050a0000000100000002", 1},
		{"ts+sack1", &TCPOptions{TSVal: 1, TSEcr: 2, HasTimestamps: true, SACKBlocks: blocks, NumSACK: 1},
			"0101080a00000001000000020101050a0000000100000002", 1},
		{"sack4", &TCPOptions{SACKBlocks: blocks, NumSACK: 4},
			"01010522" + "0000000100000002" + "0000000300000004" + "0000000500000006" + "0000000700000008", 4},
		{"ts+sack4 keeps 3", &TCPOptions{TSVal: 1, TSEcr: 2, HasTimestamps: true, SACKBlocks: blocks, NumSACK: 4},
			"0101080a0000000100000002" + "0101051a" + "0000000100000002" + "0000000300000004" + "0000000500000006", 3},
		{"all keeps 2", &TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1, TSEcr: 2, HasTimestamps: true,
			WindowScale: 7, HasWindowScale: true, SACKBlocks: blocks, NumSACK: 4},
			"020405b4" + "0402080a0000000100000002" + "01030307" + "01010512" + "0000000100000002" + "0000000300000004", 2},
		{"numsack clamped", &TCPOptions{SACKBlocks: blocks, NumSACK: 99},
			"01010522" + "0000000100000002" + "0000000300000004" + "0000000500000006" + "0000000700000008", 4},
		{"numsack negative", &TCPOptions{SACKBlocks: blocks, NumSACK: -3}, "", 0},
	}
	for _, c := range cases {
		want := mustHex(t, c.want)
		if n := TCPOptionsLen(c.o); n != len(want) || n%4 != 0 || n > TCPMaxOptionsLen {
			t.Errorf("%s: TCPOptionsLen %d, want %d", c.name, n, len(want))
		}
		buf := bytes.Repeat([]byte{0xee}, 64)
		n := PutTCPOptions(buf, c.o)
		if !bytes.Equal(buf[:n], want) {
			t.Errorf("%s: wrote %x, want %x", c.name, buf[:n], want)
		}
		if buf[n] != 0xee {
			t.Errorf("%s: wrote past the options", c.name)
		}
		if len(want) > 0 && PutTCPOptions(buf[:len(want)-1], c.o) != 0 {
			t.Errorf("%s: short buffer did not return 0", c.name)
		}
		// What was written parses back to what was asked, minus dropped blocks.
		var got TCPOptions
		if err := ParseTCPOptions(buf[:n], &got); err != nil {
			t.Errorf("%s: reparse: %v", c.name, err)
			continue
		}
		var exp TCPOptions
		if c.o != nil {
			exp = *c.o
			exp.NumSACK = c.nsck
			exp.SACKBlocks = [4]SACKBlock{}
			copy(exp.SACKBlocks[:], c.o.SACKBlocks[:c.nsck])
		}
		if got != exp {
			t.Errorf("%s: reparsed %+v, want %+v", c.name, got, exp)
		}
	}
}

func TestPutTCP(t *testing.T) {
	f := TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: PSH | ACK, Window: 5, Urgent: 6}
	o := TCPOptions{TSVal: 7, TSEcr: 8, HasTimestamps: true}
	payload := []byte("hello")
	want := 20 + 12 + 5
	buf := make([]byte, want)
	for n := range want {
		if got := PutTCP(buf[:n], &f, &o, payload); got != 0 {
			t.Fatalf("buffer %d: wrote %d", n, got)
		}
	}
	if got := PutTCP(buf, &f, &o, payload); got != want {
		t.Fatalf("wrote %d, want %d", got, want)
	}
	tcp, err := ParseTCP(buf)
	if err != nil {
		t.Fatal(err)
	}
	var got TCPOptions
	if err := tcp.Options(&got); err != nil {
		t.Fatal(err)
	}
	if tcp.SrcPort() != 1 || tcp.DstPort() != 2 || tcp.Seq() != 3 || tcp.Ack() != 4 ||
		tcp.Flags() != PSH|ACK || tcp.Window() != 5 || tcp.Urgent() != 6 || tcp.Checksum() != 0 ||
		tcp.DataOffset() != 32 || got != o || string(tcp.Payload()) != "hello" || buf[12]&0x0f != 0 {
		t.Errorf("round trip wrong: % x", buf)
	}
	// nil options.
	if n := PutTCP(buf, &f, nil, nil); n != 20 || buf[12] != 0x50 {
		t.Errorf("nil options: %d, % x", n, buf[:20])
	}
	// SetTCPChecksum leaves short segments alone.
	SetTCPChecksum(buf[:10], netipv4(1), netipv4(2))
}
