package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
)

var base = time.Unix(1700000000, 987654321)

// wantStats counts what reading recs must give.
func wantStats(recs []record) Stats {
	s := Stats{Frames: int64(len(recs)), Malformed: map[string]int64{}}
	for _, r := range recs {
		switch r.tc.kind {
		case "tcp":
			s.TCP++
		case "nontcp":
			s.NonTCP++
		case "fragment":
			s.Fragments++
		default:
			s.Malformed[r.tc.kind]++
		}
	}
	return s
}

func statsEqual(a, b Stats) bool {
	if a.Frames != b.Frames || a.TCP != b.TCP || a.NonTCP != b.NonTCP || a.Fragments != b.Fragments || len(a.Malformed) != len(b.Malformed) {
		return false
	}
	for k, v := range a.Malformed {
		if b.Malformed[k] != v {
			return false
		}
	}
	return true
}

// readAll reads r to the end and checks every packet against recs, with
// the timestamps cut to the file's resolution by stamp.
func readAll(t *testing.T, r *Reader, recs []record, stamp func(time.Time) time.Time) {
	t.Helper()
	i := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		for i < len(recs) && recs[i].tc.kind != "tcp" {
			i++
		}
		if i == len(recs) {
			t.Fatalf("Next returned an extra packet %+v", p)
		}
		rec := recs[i]
		i++
		want := rec.tc.want
		want.Wire = rec.wire
		got := *p
		if wt := stamp(rec.ts); !got.T.Equal(wt) {
			t.Errorf("%s: T = %v, want %v", rec.tc.name, got.T.UTC(), wt.UTC())
		}
		got.T = time.Time{}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", rec.tc.name, got, want)
		}
	}
	for ; i < len(recs); i++ {
		if recs[i].tc.kind == "tcp" {
			t.Errorf("%s: never returned", recs[i].tc.name)
		}
	}
	if got, want := r.Stats(), wantStats(recs); !statsEqual(got, want) {
		t.Errorf("Stats\n got %+v\nwant %+v", got, want)
	}
}

func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
func nano(t time.Time) time.Time  { return t }

// TestFormatsAndLinkTypes writes every test packet framed for every link
// type into a file of every format, reads it back and compares every
// field of every packet, the counts, and the progress.
func TestFormatsAndLinkTypes(t *testing.T) {
	cs := cases(t)
	le, be := binary.LittleEndian, binary.BigEndian
	type fileFormat struct {
		name  string
		write func(lv linkVariant, recs []record) []byte
		stamp func(time.Time) time.Time
	}
	formats := []fileFormat{
		{"pcap-micro-le", func(lv linkVariant, recs []record) []byte {
			if lv.link > 255 { // beyond pcapgo's uint8 LinkType
				return pcapFile(le, false, lv.link, 65535, recs)
			}
			return pcapgoFile(t, false, lv.link, recs)
		}, micro},
		{"pcap-nano-le", func(lv linkVariant, recs []record) []byte {
			if lv.link > 255 {
				return pcapFile(le, true, lv.link, 65535, recs)
			}
			return pcapgoFile(t, true, lv.link, recs)
		}, nano},
		{"pcap-micro-be", func(lv linkVariant, recs []record) []byte { return pcapFile(be, false, lv.link, 262144, recs) }, micro},
		{"pcap-nano-be", func(lv linkVariant, recs []record) []byte { return pcapFile(be, true, lv.link, 96, recs) }, nano},
		{"pcap-gzip", func(lv linkVariant, recs []record) []byte { return gz(t, pcapFile(le, true, lv.link, 0, recs)) }, nano},
		{"pcapng-nano-le", func(lv linkVariant, recs []record) []byte {
			if lv.link > 255 {
				w := &ngw{order: le}
				w.section()
				w.iface(lv.link, 0, w.opt(ngOptTSResol, []byte{9}))
				for _, r := range recs {
					w.epb(0, uint64(r.ts.UnixNano()), r.data, r.wire)
				}
				return w.b
			}
			return ngFile(t, recs)
		}, nano},
		{"pcapng-micro-be-default-resolution", func(lv linkVariant, recs []record) []byte {
			w := &ngw{order: be}
			w.section()
			w.iface(lv.link, 0) // no options: microseconds
			for _, r := range recs {
				w.epb(0, uint64(r.ts.UnixMicro()), r.data, r.wire, w.opt(2, be.AppendUint32(nil, 1)))
			}
			return w.b
		}, micro},
		{"pcapng-milli-be-offset", func(lv linkVariant, recs []record) []byte {
			w := &ngw{order: be}
			w.section()
			const off = 1600000000
			w.iface(lv.link, 1<<16, w.opt(ngOptTSResol, []byte{3}), w.opt(ngOptTSOffset, be.AppendUint64(nil, off)))
			for _, r := range recs {
				w.epb(0, uint64(r.ts.UnixMilli()-off*1000), r.data, r.wire)
			}
			return w.b
		}, func(t time.Time) time.Time { return t.Truncate(time.Millisecond) }},
		{"pcapng-binary-le", func(lv linkVariant, recs []record) []byte {
			w := &ngw{order: le}
			w.section()
			w.iface(lv.link, 0, w.opt(ngOptTSResol, []byte{0x80 | 8}))
			for _, r := range recs {
				ticks := uint64(r.ts.Unix())<<8 | uint64(r.ts.Nanosecond())*256/1e9
				w.epb(0, ticks, r.data, r.wire)
			}
			return w.b
		}, func(t time.Time) time.Time {
			return time.Unix(t.Unix(), int64(t.Nanosecond())*256/1e9*3906250) // 1/256 s
		}},
	}
	dir := t.TempDir()
	for _, f := range formats {
		for _, lv := range linkVariants {
			t.Run(f.name+"/"+lv.name, func(t *testing.T) {
				recs := records(lv, cs, base)
				path := filepath.Join(dir, f.name+"-"+lv.name)
				data := f.write(lv, recs)
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				r, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				readAll(t, r, recs, f.stamp)
				if read, total := r.Progress(); read != int64(len(data)) || total != int64(len(data)) {
					t.Errorf("Progress = %d, %d; want %d, %d", read, total, len(data), len(data))
				}
			})
		}
	}
}

// TestMixedNg reads a pcapng file with several interfaces of different
// link types and resolutions, two sections of different byte orders,
// Simple and obsolete Packet Blocks, a block type it does not know, and
// bad packet blocks.
func TestMixedNg(t *testing.T) {
	cs := cases(t)
	syn, synack, data := cs[0], cs[1], cs[3]
	eth := records(linkVariants[0], []tcase{syn}, base)[0]
	sll2 := records(linkVariants[4], []tcase{synack}, base.Add(time.Second))[0]
	raw := records(linkVariants[5], []tcase{data}, base.Add(2*time.Second))[0]
	spb := records(linkVariants[5], []tcase{syn}, time.Time{})[0]
	opb := records(linkVariants[2], []tcase{data}, base.Add(3*time.Second))[0]
	be2 := records(linkVariants[3], []tcase{synack}, base.Add(4*time.Second))[0]
	// Interfaces 1 and 2 have microsecond timestamps.
	eth.ts, sll2.ts, opb.ts = micro(eth.ts), micro(sll2.ts), micro(opb.ts)

	w := &ngw{order: binary.LittleEndian}
	w.section()
	w.iface(LinkRaw, 0, w.opt(ngOptTSResol, []byte{9})) // 0: raw, ns; also the SPB's
	w.iface(LinkEthernet, 0)                            // 1: Ethernet, µs
	w.block(0xbad, []byte("a custom block to skip"))
	w.epb(1, uint64(eth.ts.UnixMicro()), eth.data, eth.wire)
	w.iface(LinkLinuxSLL2, 0, w.opt(ngOptTSResol, []byte{6})) // 2: SLL2
	w.epb(2, uint64(sll2.ts.UnixMicro()), sll2.data, sll2.wire)
	w.epb(0, uint64(raw.ts.UnixNano()), raw.data, raw.wire)
	w.spb(spb.data, spb.wire)
	w.epb(7, 0, raw.data, raw.wire) // no interface 7
	// An EPB whose captured length runs past its block.
	bad := binary.LittleEndian.AppendUint32(nil, 0)
	bad = binary.LittleEndian.AppendUint32(bad, 0)
	bad = binary.LittleEndian.AppendUint32(bad, 0)
	bad = binary.LittleEndian.AppendUint32(bad, 1000)
	bad = binary.LittleEndian.AppendUint32(bad, 1000)
	w.block(ngEnhancedPacket, append(bad, 0x45, 0, 0, 0))
	w.opb(1, uint64(opb.ts.UnixMicro()), opb.data, opb.wire)
	// A second section, big-endian: its interfaces start again at 0.
	w2 := &ngw{order: binary.BigEndian}
	w2.section()
	w2.iface(LinkLinuxSLL, 0, w2.opt(ngOptTSResol, []byte{9}))
	w2.epb(0, uint64(be2.ts.UnixNano()), be2.data, be2.wire)
	file := append(w.b, w2.b...)

	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	want := []record{eth, sll2, raw, spb,
		{tc: tcase{kind: errInterface.Reason}}, {tc: tcase{kind: errRecord.Reason}},
		opb, be2}
	readAll(t, r, want, nano)
	if read, total := r.Progress(); read != int64(len(file)) || total != 0 {
		t.Errorf("Progress = %d, %d; want %d, 0 (unknown size)", read, total, len(file))
	}
}

// TestNotACapture checks the error for files that are not captures.
func TestNotACapture(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"text":            []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n"),
		"empty":           nil,
		"short":           {0xd4, 0xc3},
		"json":            []byte(`{"t":0}`),
		"gzip":            gz(t, []byte("hello, not a capture")),
		"pcap-header-cut": {0xd4, 0xc3, 0xb2, 0xa1, 2, 0},
		"ng-bad-bom":      {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err == nil {
			r.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), "not a pcap or pcapng file") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not say it is not a capture, or which file", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v", err)
	}
}

// TestFileErrors checks unsupported versions and link types, corrupt
// lengths and files cut short.
func TestFileErrors(t *testing.T) {
	cs := cases(t)
	recs := records(linkVariants[0], cs[:3], base)
	le := binary.LittleEndian
	good := pcapFile(le, false, LinkEthernet, 65535, recs)

	open := func(b []byte) (*Reader, error) { return NewReader(bytes.NewReader(b)) }
	drain := func(r *Reader) (int, error) {
		n := 0
		for {
			_, err := r.Next()
			if err != nil {
				return n, err
			}
			n++
		}
	}

	// A file cut inside the last record: the complete ones come first.
	r, err := open(good[:len(good)-10])
	if err != nil {
		t.Fatal(err)
	}
	if n, err := drain(r); n != 2 || !errors.Is(err, ErrTruncatedFile) {
		t.Errorf("cut pcap: %d packets, %v; want 2 and ErrTruncatedFile", n, err)
	}
	// Cut inside a record header.
	r, _ = open(good[:24+16+len(recs[0].data)+5])
	if n, err := drain(r); n != 1 || !errors.Is(err, ErrTruncatedFile) {
		t.Errorf("cut pcap header: %d packets, %v", n, err)
	}
	// A corrupt captured length.
	bad := append([]byte(nil), good...)
	le.PutUint32(bad[24+8:], 1<<30)
	r, _ = open(bad)
	if n, err := drain(r); n != 0 || err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt length: %d packets, %v", n, err)
	}
	// Unsupported pcap version and link type.
	bad = append([]byte(nil), good...)
	le.PutUint16(bad[4:], 3)
	if _, err := open(bad); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("version 3: %v", err)
	}
	bad = append([]byte(nil), good...)
	le.PutUint32(bad[20:], 105) // IEEE 802.11
	if _, err := open(bad); err == nil || !strings.Contains(err.Error(), "link type 105") {
		t.Errorf("link type 105: %v", err)
	}
	// The FCS bits above the link type are ignored.
	bad = append([]byte(nil), good...)
	le.PutUint32(bad[20:], 1|1<<26|4<<28)
	if r, err := open(bad); err != nil {
		t.Errorf("FCS bits: %v", err)
	} else if n, err := drain(r); n != 3 || err != io.EOF {
		t.Errorf("FCS bits: %d packets, %v", n, err)
	}

	// pcapng: bad resolutions, an unsupported interface link type, a
	// block length that is not a multiple of 4, a trailer that does not
	// match, a cut file.
	for _, tc := range []struct {
		name string
		opt  []byte
	}{{"2^-64", []byte{0x80 | 64}}, {"10^-20", []byte{20}}} {
		w := &ngw{order: le}
		w.section()
		w.iface(LinkEthernet, 0, w.opt(ngOptTSResol, tc.opt))
		w.epb(0, 1, recs[0].data, recs[0].wire)
		r, _ := open(w.b)
		if n, err := drain(r); n != 0 || err == nil || !strings.Contains(err.Error(), "if_tsresol") {
			t.Errorf("if_tsresol %s: %d, %v", tc.name, n, err)
		}
	}
	w := &ngw{order: le}
	w.section()
	w.iface(105, 0)
	w.epb(0, 1, recs[0].data, recs[0].wire)
	r, _ = open(w.b)
	if n, err := drain(r); n != 0 || err != io.EOF || r.Stats().Malformed[errLinkType.Reason] != 1 {
		t.Errorf("pcapng link type 105: %d, %v, %+v", n, err, r.Stats())
	}
	w = &ngw{order: le}
	w.section()
	w.iface(LinkEthernet, 0)
	w.epb(0, 1, recs[0].data, recs[0].wire)
	ng := w.b
	shb := int(le.Uint32(ng[4:])) // the section header's length
	bad = append([]byte(nil), ng...)
	le.PutUint32(bad[shb+4:], 21)
	r, _ = open(bad)
	if n, err := drain(r); n != 0 || err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("block length 21: %d, %v", n, err)
	}
	bad = append([]byte(nil), ng...)
	le.PutUint32(bad[len(bad)-4:], 8)
	r, _ = open(bad)
	if n, err := drain(r); n != 0 || err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("bad trailer: %d, %v", n, err)
	}
	r, _ = open(ng[:len(ng)-3])
	if n, err := drain(r); n != 0 || !errors.Is(err, ErrTruncatedFile) {
		t.Errorf("cut pcapng: %d, %v", n, err)
	}
	// A huge block of a type that is skipped runs into the end of the
	// file: truncated, and nothing allocated for it.
	w = &ngw{order: le}
	w.section()
	bad = append(w.b, 0xad, 0x0b, 0, 0, 0, 0, 0, 0x7f)
	r, _ = open(bad)
	if n, err := drain(r); n != 0 || !errors.Is(err, ErrTruncatedFile) {
		t.Errorf("huge skipped block: %d, %v", n, err)
	}
}

// TestReasons checks that every malformed reason has its own counter.
func TestReasons(t *testing.T) {
	seen := map[string]bool{}
	for i, e := range reasons {
		if e.idx != i {
			t.Errorf("reasons[%d] = %q has index %d", i, e.Reason, e.idx)
		}
		if seen[e.Reason] {
			t.Errorf("reason %q twice", e.Reason)
		}
		seen[e.Reason] = true
	}
}

// TestDecodeErrors checks Decode's verdicts on frames that are not TCP
// or are broken at the link layer.
func TestDecodeErrors(t *testing.T) {
	arp := append(etherHdr()(4)[:12], 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	llc := append(etherHdr()(4)[:12], 0x00, 0x30, 0xaa, 0xaa, 3)
	esp := make([]byte, 60)
	esp[0], esp[6] = 0x60, 50
	for _, tc := range []struct {
		name  string
		link  LinkType
		frame []byte
		want  error
	}{
		{"arp", LinkEthernet, arp, ErrNotTCP},
		{"802.3 LLC", LinkEthernet, llc, ErrNotTCP},
		{"esp", LinkRaw, esp, ErrNotTCP},
		{"short ethernet", LinkEthernet, []byte{1, 2, 3}, errLinkShort},
		{"short vlan", LinkEthernet, append(etherHdr()(4)[:12], 0x81, 0x00, 0), errLinkShort},
		{"short sll", LinkLinuxSLL, make([]byte, 15), errLinkShort},
		{"short sll2", LinkLinuxSLL2, make([]byte, 19), errLinkShort},
		{"empty raw", LinkRaw, nil, errIPShort},
		{"version 5", LinkRaw, []byte{0x50, 0, 0, 0}, errIPVersion},
		{"v6 on LINKTYPE_IPV4", LinkIPv4, esp, errIPVersion},
		{"unknown link", 147, esp, errLinkType},
	} {
		var p Packet
		if err := Decode(tc.link, tc.frame, len(tc.frame), &p); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestZeroLengthFields checks the GSO/BIG TCP case: an IP length field of
// zero takes the length from the frame.
func TestZeroLengthFields(t *testing.T) {
	cs := cases(t)
	for _, tc := range []tcase{cs[2], cs[3]} { // data4, sack6
		ip := append([]byte(nil), tc.ip...)
		if tc.family == 4 {
			binary.BigEndian.PutUint16(ip[2:], 0)
		} else {
			binary.BigEndian.PutUint16(ip[4:], 0)
		}
		var p Packet
		if err := Decode(LinkRaw, ip, len(ip), &p); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.PayloadLen != tc.want.PayloadLen || p.Truncated {
			t.Errorf("%s: PayloadLen %d, Truncated %v; want %d, false", tc.name, p.PayloadLen, p.Truncated, tc.want.PayloadLen)
		}
	}
}

// bigCapture returns a pcap file of n Ethernet frames: the TCP cases over
// and over.
func bigCapture(t testing.TB, n int) []byte {
	var tcp []tcase
	for _, c := range cases(t) {
		if c.kind == "tcp" {
			tcp = append(tcp, c)
		}
	}
	var recs []record
	for len(recs) < n {
		recs = append(recs, records(linkVariants[1], tcp, base)...)
	}
	return pcapFile(binary.LittleEndian, true, LinkEthernet, 65535, recs[:n])
}

// TestNoAllocs checks that reading a packet allocates nothing once the
// Reader is warm.
func TestNoAllocs(t *testing.T) {
	file := bigCapture(t, 2000)
	for _, f := range []struct {
		name string
		data []byte
	}{{"pcap", file}, {"pcapng", ngFromPcap(file)}} {
		r, err := NewReader(bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			r.Next()
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.2f allocations per packet, want 0", f.name, allocs)
		}
	}
}

// ngFromPcap rewrites a little-endian nanosecond pcap file as pcapng.
func ngFromPcap(file []byte) []byte {
	le := binary.LittleEndian
	w := &ngw{order: le}
	w.section()
	w.iface(LinkType(le.Uint32(file[20:])), 0, w.opt(ngOptTSResol, []byte{9}))
	for b := file[24:]; len(b) >= 16; {
		ts := uint64(le.Uint32(b))*1e9 + uint64(le.Uint32(b[4:]))
		caplen, wire := int(le.Uint32(b[8:])), int(le.Uint32(b[12:]))
		w.epb(0, ts, b[16:16+caplen], wire)
		b = b[16+caplen:]
	}
	return w.b
}

func BenchmarkDecode(b *testing.B) {
	recs := records(linkVariants[1], cases(b)[:4], base)
	var p Packet
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		if err := Decode(r.link, r.data, r.wire, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	for _, f := range []string{"pcap", "pcapng"} {
		b.Run(f, func(b *testing.B) {
			file := bigCapture(b, 10000)
			if f == "pcapng" {
				file = ngFromPcap(file)
			}
			r, _ := NewReader(bytes.NewReader(file))
			b.SetBytes(int64(len(file) / 10000))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Next(); err == io.EOF {
					b.StopTimer()
					r, _ = NewReader(bytes.NewReader(file))
					b.StartTimer()
				} else if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecode feeds the frame decoder arbitrary frames of every link type.
// It must never panic, and what it accepts must be self-consistent.
func FuzzDecode(f *testing.F) {
	for _, lv := range linkVariants {
		for _, r := range records(lv, cases(f), base) {
			f.Add(uint16(r.link), r.data, r.wire)
		}
	}
	f.Fuzz(func(t *testing.T, link uint16, frame []byte, wire int) {
		var p Packet
		err := Decode(LinkType(link), frame, wire, &p)
		if err != nil {
			var m *MalformedError
			if err != ErrNotTCP && err != ErrFragment && !errors.As(err, &m) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p.PayloadLen < 0 || p.Options.NumSACK < 0 || p.Options.NumSACK > 4 || !p.Src.IsValid() || !p.Dst.IsValid() {
			t.Fatalf("inconsistent packet %+v", p)
		}
		if p.Src.Addr().Is4() != p.Dst.Addr().Is4() {
			t.Fatalf("mixed families %+v", p)
		}
	})
}

// FuzzReader feeds the file parsers arbitrary files, seeded with valid
// ones of each format. They must never panic, must end, and must count
// every frame.
func FuzzReader(f *testing.F) {
	cs := cases(f)
	for _, lv := range linkVariants[:6] {
		recs := records(lv, []tcase{cs[0], cs[len(cs)-2]}, base)
		f.Add(pcapFile(binary.LittleEndian, false, lv.link, 65535, recs))
		f.Add(pcapFile(binary.BigEndian, true, lv.link, 65535, recs))
		w := &ngw{order: binary.BigEndian}
		w.section()
		w.iface(lv.link, 0, w.opt(ngOptTSResol, []byte{0x80 | 20}))
		for _, r := range recs {
			w.epb(0, uint64(r.ts.UnixNano()), r.data, r.wire)
		}
		w.spb(recs[0].data, recs[0].wire)
		f.Add(w.b)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		r, err := NewReader(bytes.NewReader(file))
		if err != nil {
			return
		}
		n := int64(0)
		for ; n <= int64(len(file)); n++ {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		s := r.Stats()
		if n > int64(len(file)) {
			t.Fatalf("more packets than bytes")
		}
		var mal int64
		for _, v := range s.Malformed {
			mal += v
		}
		if s.TCP != n || s.Frames != s.TCP+s.NonTCP+s.Fragments+mal {
			t.Fatalf("counts do not add up: %d packets, %+v", n, s)
		}
		if read, _ := r.Progress(); read > int64(len(file)) {
			t.Fatalf("progress %d past the file's %d bytes", read, len(file))
		}
	})
}

func ExampleOpen() {
	r, err := Open("capture.pcapng")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for {
		p, err := r.Next()
		if err != nil {
			break // io.EOF at the end
		}
		fmt.Println(p.Src, "->", p.Dst, p.Flags, p.Seq, p.PayloadLen)
	}
}

// TestEthernetPadding checks that the padding of a short Ethernet frame
// (to the 60-byte minimum, IEEE 802.3 §3.2.8) is not taken as payload.
func TestEthernetPadding(t *testing.T) {
	ip, want := seg{src: netip.AddrPortFrom(v4a, 1), dst: netip.AddrPortFrom(v4b, 2), flags: header.ACK, seq: 3, ack: 4, win: 5}.build(t)
	frame := append(etherHdr()(4), ip...)
	frame = append(frame, make([]byte, 60-len(frame))...)
	var p Packet
	if err := Decode(LinkEthernet, frame, len(frame), &p); err != nil {
		t.Fatal(err)
	}
	want.Wire = 60
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}
