package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync/atomic"
	"time"
)

// File format constants. Classic pcap: the tcpdump.org pcap file format
// (draft-ietf-opsawg-pcap); pcapng: draft-ietf-opsawg-pcapng.
const (
	pcapMagicMicro = 0xa1b2c3d4 // as the writer's byte order reads it
	pcapMagicNano  = 0xa1b23c4d
	pcapHeaderLen  = 24
	pcapRecordLen  = 16

	ngSectionHeader  = 0x0a0d0d0a // the same in both byte orders
	ngByteOrderMagic = 0x1a2b3c4d
	ngInterfaceDesc  = 1
	ngObsoletePacket = 2 // the Packet Block of pcapng's first draft
	ngSimplePacket   = 3
	ngEnhancedPacket = 6

	ngOptEnd      = 0
	ngOptTSResol  = 9  // if_tsresol
	ngOptTSOffset = 14 // if_tsoffset

	// maxRecord bounds the captured bytes of one packet record (and the
	// body of a pcapng packet block). libpcap refuses records above its
	// largest snap length, 256 KiB for most link types; this is more
	// lenient, but a record above it is taken as a corrupt file rather
	// than a reason to allocate gigabytes.
	maxRecord = 16 << 20
)

// ErrTruncatedFile is wrapped by the error Next returns when the file ends
// in the middle of a record or block: typically a capture that was cut
// short or is still being written. Every complete record before it has
// been returned.
var ErrTruncatedFile = errors.New("capture: file ends inside a record")

type format uint8

const (
	formatPcap format = iota + 1
	formatNg
	formatLive
)

// ngIface is what a pcapng Interface Description Block says about the
// interface its packets came from.
type ngIface struct {
	link     LinkType
	snap     uint32
	units    uint64 // timestamp ticks per second (if_tsresol)
	tsOffset int64  // seconds added to every timestamp (if_tsoffset)
}

// Reader reads TCP segments from a capture file or a live interface. Make
// one with Open, NewReader or OpenLive. A Reader is not safe for
// concurrent use, except that Progress and Stats may be called from any
// goroutine.
type Reader struct {
	format  format
	br      *bufio.Reader
	skip    int // bytes of the last pcap record, peeked in br, to discard before the next
	counter *countingReader
	gz      bool
	closer  io.Closer
	total   int64
	read    atomic.Int64

	// Classic pcap.
	bigEndian bool
	nano      bool
	link      LinkType

	// pcapng: the interfaces of the current section.
	ifaces []ngIface

	live *liveSource

	hdr [32]byte
	buf []byte
	pkt Packet
	st  counters
}

// countingReader counts the bytes read from the file, for Progress.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Open opens a capture file: classic pcap (microsecond or nanosecond
// timestamps, either byte order) or pcapng, either of them optionally
// gzip-compressed. A file that is neither says so in the error. Close the
// Reader when done.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	r.closer = f
	return r, nil
}

// NewReader reads a capture from r, as Open does for a file. If r is an
// *os.File of a regular file, Progress reports its size as the total;
// otherwise the total is 0 (unknown). Close does not close r.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{counter: &countingReader{r: r}}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			rd.total = fi.Size()
		}
	}
	rd.br = bufio.NewReaderSize(rd.counter, 64<<10)
	magic, err := rd.br.Peek(4)
	if len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		// gzip (RFC 1952 §2.3.1), as tcpdump -z gzip leaves it.
		zr, err := gzip.NewReader(rd.br)
		if err != nil {
			return nil, fmt.Errorf("capture: not a pcap or pcapng file: gzip: %v", err)
		}
		rd.gz = true
		rd.br = bufio.NewReaderSize(zr, 64<<10)
		magic, err = rd.br.Peek(4)
		if err != nil && len(magic) < 4 {
			return nil, fmt.Errorf("capture: not a pcap or pcapng file: gzip data of %d bytes", len(magic))
		}
	} else if err != nil && len(magic) < 4 {
		return nil, fmt.Errorf("capture: not a pcap or pcapng file: only %d bytes", len(magic))
	}
	le, be := binary.LittleEndian.Uint32(magic), binary.BigEndian.Uint32(magic)
	switch {
	case le == ngSectionHeader:
		rd.format = formatNg
		if err := rd.readFirstSection(); err != nil {
			return nil, err
		}
	case le == pcapMagicMicro || le == pcapMagicNano || be == pcapMagicMicro || be == pcapMagicNano:
		rd.format = formatPcap
		if err := rd.readPcapHeader(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("capture: not a pcap or pcapng file: it starts with %x", magic)
	}
	rd.updateProgress()
	return rd, nil
}

// Close closes the file that Open opened, or the live socket. It does not
// close a reader given to NewReader.
func (r *Reader) Close() error {
	if r.live != nil {
		return r.live.close()
	}
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Progress returns how many bytes of the file have been read, and the
// file's size (0 when unknown, as for a pipe or a live capture, where
// read counts the bytes received). For a gzip-compressed file both count
// compressed bytes.
func (r *Reader) Progress() (read, total int64) {
	return r.read.Load(), r.total
}

func (r *Reader) updateProgress() {
	n := r.counter.n.Load()
	if !r.gz {
		n -= int64(r.br.Buffered() - r.skip) // a record read in place is read
	}
	r.read.Store(n)
}

// Next returns the next TCP segment. Frames that carry no TCP header, and
// frames that cannot be decoded, are skipped and counted in Stats. At the
// end of the capture it returns io.EOF; a file cut inside a record gives
// an error wrapping ErrTruncatedFile, and a corrupt file an error that
// says where. The Packet is reused: it is valid until the next call.
func (r *Reader) Next() (*Packet, error) {
	for {
		var (
			data []byte
			wire int
			link LinkType
			ts   time.Time
			err  error
		)
		switch r.format {
		case formatPcap:
			data, wire, ts, err = r.nextPcap()
			link = r.link
		case formatNg:
			data, wire, link, ts, err = r.nextNg()
		case formatLive:
			data, wire, link, ts, err = r.live.next(r)
		default:
			return nil, errors.New("capture: Reader not made by Open, NewReader or OpenLive")
		}
		if r.format != formatLive {
			r.updateProgress()
		}
		if err == ErrNotTCP {
			r.st.frames.Add(1)
			r.st.nonTCP.Add(1)
			continue
		}
		if err != nil {
			var m *MalformedError
			if errors.As(err, &m) {
				r.st.frames.Add(1)
				r.st.malformed[m.index()].Add(1)
				continue
			}
			return nil, err
		}
		if data == nil {
			continue // a live frame that is not ours
		}
		r.st.frames.Add(1)
		switch err := Decode(link, data, wire, &r.pkt); err {
		case nil:
			r.pkt.T = ts
			r.st.tcp.Add(1)
			return &r.pkt, nil
		case ErrNotTCP:
			r.st.nonTCP.Add(1)
		case ErrFragment:
			r.st.fragments.Add(1)
		default:
			m, _ := err.(*MalformedError)
			r.st.malformed[m.index()].Add(1)
		}
	}
}

// u16 and u32 read the file's byte order.
func (r *Reader) u16(b []byte) uint16 {
	if r.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// readFull reads len(b) bytes; an end of file after some of them is
// ErrTruncatedFile, at none of them io.EOF if eofOK.
func (r *Reader) readFull(b []byte, what string, eofOK bool) error {
	n, err := io.ReadFull(r.br, b)
	switch {
	case err == nil:
		return nil
	case err == io.EOF && eofOK:
		return io.EOF
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: %s, %d of %d bytes", ErrTruncatedFile, what, n, len(b))
	}
	return fmt.Errorf("capture: reading %s: %w", what, err)
}

// grow returns r.buf resized to n bytes, reusing its memory.
func (r *Reader) grow(n int) []byte {
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 64<<10))
	}
	r.buf = r.buf[:n]
	return r.buf
}

// readPcapHeader reads a classic pcap file header: magic, version 2.4,
// two unused fields, snap length and link type (draft-ietf-opsawg-pcap
// §4).
func (r *Reader) readPcapHeader() error {
	h := r.hdr[:pcapHeaderLen]
	if err := r.readFull(h, "pcap file header", false); err != nil {
		return fmt.Errorf("capture: not a pcap or pcapng file: %w", err)
	}
	le := binary.LittleEndian.Uint32(h)
	r.bigEndian = le != pcapMagicMicro && le != pcapMagicNano
	magic := r.u32(h)
	r.nano = magic == pcapMagicNano
	if major := r.u16(h[4:]); major != 2 {
		return fmt.Errorf("capture: unsupported pcap version %d.%d", major, r.u16(h[6:]))
	}
	// The link type is the low 16 bits; the upper ones say whether frames
	// end in a frame check sequence (§4, LinkType and additional
	// information), which does not matter here: lengths come from the IP
	// header.
	r.link = LinkType(r.u32(h[20:]) & 0xffff)
	if !r.link.Supported() {
		return fmt.Errorf("capture: pcap link type %d is not supported (Ethernet, raw IP, IPv4, IPv6 and Linux cooked v1 and v2 are)", r.link)
	}
	return nil
}

// nextPcap reads one classic pcap record: seconds, microseconds or
// nanoseconds, captured length, original length, then the bytes
// (draft-ietf-opsawg-pcap §5).
func (r *Reader) nextPcap() ([]byte, int, time.Time, error) {
	if r.skip > 0 {
		// The previous record, read in place: it has been decoded.
		n := r.skip
		r.skip = 0
		if _, err := r.br.Discard(n); err != nil {
			return nil, 0, time.Time{}, fmt.Errorf("capture: reading pcap record: %w", err)
		}
	}
	h := r.hdr[:pcapRecordLen]
	if err := r.readFull(h, "pcap record header", true); err != nil {
		return nil, 0, time.Time{}, err
	}
	sec, frac := r.u32(h[0:]), r.u32(h[4:])
	caplen, wire := r.u32(h[8:]), r.u32(h[12:])
	if caplen > maxRecord {
		// The records have no framing beyond their lengths: past a
		// corrupt length there is no finding the next one.
		return nil, 0, time.Time{}, fmt.Errorf("capture: corrupt pcap file: a record of %d captured bytes, at byte %d", caplen, r.read.Load())
	}
	var data []byte
	if n := int(caplen); n <= r.br.Size() {
		// In place, without a copy: the bytes stay valid until the next
		// read, after Decode is done with them (see skip).
		b, err := r.br.Peek(n)
		switch {
		case err == nil:
			data, r.skip = b, n
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil, 0, time.Time{}, fmt.Errorf("%w: %s, %d of %d bytes", ErrTruncatedFile, "pcap record", len(b), n)
		default:
			return nil, 0, time.Time{}, fmt.Errorf("capture: reading %s: %w", "pcap record", err)
		}
	} else {
		data = r.grow(n)
		if err := r.readFull(data, "pcap record", false); err != nil {
			return nil, 0, time.Time{}, err
		}
	}
	nsec := int64(frac)
	if !r.nano {
		nsec *= 1000
	}
	return data, int(max(wire, caplen)), time.Unix(int64(sec), nsec), nil
}

// readFirstSection reads the Section Header Block that starts a pcapng
// file.
func (r *Reader) readFirstSection() error {
	h := r.hdr[:12]
	if err := r.readFull(h, "pcapng section header", false); err != nil {
		return fmt.Errorf("capture: not a pcap or pcapng file: %w", err)
	}
	if err := r.sectionHeader(h); err != nil {
		return fmt.Errorf("capture: not a pcap or pcapng file: %w", err)
	}
	return nil
}

// sectionHeader reads the rest of a Section Header Block whose first 12
// bytes (type, length, byte-order magic) are h
// (draft-ietf-opsawg-pcapng §4.1). It sets the byte order and forgets the
// previous section's interfaces.
func (r *Reader) sectionHeader(h []byte) error {
	switch binary.LittleEndian.Uint32(h[8:]) {
	case ngByteOrderMagic:
		r.bigEndian = false
	case 0x4d3c2b1a: // the magic written big-endian
		r.bigEndian = true
	default:
		return fmt.Errorf("pcapng section header with byte-order magic %x", h[8:12])
	}
	length := r.u32(h[4:])
	if length < 28 || length%4 != 0 {
		return fmt.Errorf("capture: corrupt pcapng file: section header of length %d", length)
	}
	v := r.hdr[12:16]
	if err := r.readFull(v, "pcapng section header", false); err != nil {
		return err
	}
	if major := r.u16(v); major != 1 {
		return fmt.Errorf("capture: unsupported pcapng version %d.%d", major, r.u16(v[2:]))
	}
	// Section length, options and the trailing length: nothing needed.
	if err := r.discard(int64(length)-16, "pcapng section header"); err != nil {
		return err
	}
	r.ifaces = r.ifaces[:0]
	return nil
}

func (r *Reader) discard(n int64, what string) error {
	for n > 0 {
		k, err := r.br.Discard(int(min(n, 1<<30)))
		n -= int64(k)
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("%w: %s, %d bytes missing", ErrTruncatedFile, what, n)
			}
			return fmt.Errorf("capture: reading %s: %w", what, err)
		}
	}
	return nil
}

// nextNg reads pcapng blocks until a packet block, and returns its bytes,
// original length, interface link type and timestamp. Blocks of other
// types are skipped (draft-ietf-opsawg-pcapng §3.1: a reader skips what it
// does not know).
func (r *Reader) nextNg() ([]byte, int, LinkType, time.Time, error) {
	for {
		h := r.hdr[:8]
		if err := r.readFull(h, "pcapng block header", true); err != nil {
			return nil, 0, 0, time.Time{}, err
		}
		typ := r.u32(h)
		if typ == ngSectionHeader {
			h = r.hdr[:12]
			if err := r.readFull(h[8:], "pcapng section header", false); err != nil {
				return nil, 0, 0, time.Time{}, err
			}
			if err := r.sectionHeader(h); err != nil {
				return nil, 0, 0, time.Time{}, err
			}
			continue
		}
		length := r.u32(h[4:])
		if length < 12 || length%4 != 0 {
			return nil, 0, 0, time.Time{}, fmt.Errorf("capture: corrupt pcapng file: block of type %#x with length %d, at byte %d", typ, length, r.read.Load())
		}
		bodyLen := int64(length) - 12
		switch typ {
		case ngInterfaceDesc, ngEnhancedPacket, ngSimplePacket, ngObsoletePacket:
		default:
			if err := r.discard(bodyLen+4, "pcapng block"); err != nil {
				return nil, 0, 0, time.Time{}, err
			}
			continue
		}
		if bodyLen > maxRecord {
			return nil, 0, 0, time.Time{}, fmt.Errorf("capture: corrupt pcapng file: block of type %d with length %d, at byte %d", typ, length, r.read.Load())
		}
		body := r.grow(int(bodyLen) + 4)
		if err := r.readFull(body, "pcapng block", false); err != nil {
			return nil, 0, 0, time.Time{}, err
		}
		if trailer := r.u32(body[bodyLen:]); trailer != length {
			return nil, 0, 0, time.Time{}, fmt.Errorf("capture: corrupt pcapng file: block of length %d ends with length %d, at byte %d", length, trailer, r.read.Load())
		}
		body = body[:bodyLen]
		if typ == ngInterfaceDesc {
			if err := r.interfaceDesc(body); err != nil {
				return nil, 0, 0, time.Time{}, err
			}
			continue
		}
		return r.ngPacket(typ, body)
	}
}

// interfaceDesc parses an Interface Description Block's body: link type,
// reserved, snap length, options (draft-ietf-opsawg-pcapng §4.2).
func (r *Reader) interfaceDesc(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("capture: corrupt pcapng file: interface description of %d bytes", len(b))
	}
	ifc := ngIface{link: LinkType(r.u16(b)), snap: r.u32(b[4:]), units: 1e6}
	for opts := b[8:]; len(opts) >= 4; {
		code, n := r.u16(opts), int(r.u16(opts[2:]))
		if code == ngOptEnd {
			break
		}
		if n > len(opts)-4 {
			return fmt.Errorf("capture: corrupt pcapng file: interface option %d of %d bytes overruns its block", code, n)
		}
		v := opts[4 : 4+n]
		switch {
		case code == ngOptTSResol && n == 1:
			// The high bit picks a power of 2, else of 10; the rest is
			// the negative exponent (§4.2, if_tsresol).
			e := uint64(v[0] & 0x7f)
			if v[0]&0x80 != 0 {
				if e > 63 {
					return fmt.Errorf("capture: corrupt pcapng file: if_tsresol 2^-%d", e)
				}
				ifc.units = 1 << e
			} else {
				if e > 19 {
					return fmt.Errorf("capture: corrupt pcapng file: if_tsresol 10^-%d", e)
				}
				ifc.units = 1
				for range e {
					ifc.units *= 10
				}
			}
		case code == ngOptTSOffset && n == 8:
			// Seconds to add to every timestamp (§4.2, if_tsoffset).
			if r.bigEndian {
				ifc.tsOffset = int64(binary.BigEndian.Uint64(v))
			} else {
				ifc.tsOffset = int64(binary.LittleEndian.Uint64(v))
			}
		}
		opts = opts[4+(n+3)&^3:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// ngPacket returns the packet of an Enhanced, Simple or obsolete Packet
// Block whose body is b (draft-ietf-opsawg-pcapng §4.3, §4.4, Appendix A).
// A block that is inconsistent in itself, or names an interface not
// described, is reported as a *MalformedError so that Next skips it: the
// block length still frames the next block.
func (r *Reader) ngPacket(typ uint32, b []byte) ([]byte, int, LinkType, time.Time, error) {
	var (
		ifID         int
		tsHi, tsLo   uint32
		caplen, wire uint32
		data         []byte
		stamped      = true
	)
	switch typ {
	case ngEnhancedPacket, ngObsoletePacket:
		if len(b) < 20 {
			return nil, 0, 0, time.Time{}, errRecord
		}
		if typ == ngEnhancedPacket {
			ifID = int(r.u32(b))
		} else {
			ifID = int(r.u16(b))
		}
		tsHi, tsLo = r.u32(b[4:]), r.u32(b[8:])
		caplen, wire = r.u32(b[12:]), r.u32(b[16:])
		if uint64(caplen) > uint64(len(b)-20) {
			return nil, 0, 0, time.Time{}, errRecord
		}
		data = b[20 : 20+caplen]
	case ngSimplePacket:
		// Only the original length; the captured bytes are the lesser of
		// it, the interface's snap length and what the block holds.
		if len(b) < 4 {
			return nil, 0, 0, time.Time{}, errRecord
		}
		stamped = false
		wire = r.u32(b)
		caplen = min(wire, uint32(len(b)-4))
		if len(r.ifaces) > 0 && r.ifaces[0].snap != 0 {
			caplen = min(caplen, r.ifaces[0].snap)
		}
		data = b[4 : 4+caplen]
	}
	if ifID < 0 || ifID >= len(r.ifaces) {
		return nil, 0, 0, time.Time{}, errInterface
	}
	ifc := &r.ifaces[ifID]
	var ts time.Time
	if stamped {
		ts = ifc.time(uint64(tsHi)<<32 | uint64(tsLo))
	}
	return data, int(max(wire, caplen)), ifc.link, ts, nil
}

// time converts a timestamp in the interface's units to a time.
func (ifc *ngIface) time(ts uint64) time.Time {
	sec, frac := ts/ifc.units, ts%ifc.units
	// frac < units, so frac*1e9/units fits in 64 bits even when the
	// product does not.
	hi, lo := bits.Mul64(frac, 1e9)
	nsec, _ := bits.Div64(hi, lo, ifc.units)
	return time.Unix(int64(sec)+ifc.tsOffset, int64(nsec))
}
