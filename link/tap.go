package link

import (
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// Pcap file constants: the classic libpcap format, little-endian, with
// microsecond timestamps, carrying raw IP packets (draft-ietf-opsawg-pcap).
const (
	pcapMagic        = 0xa1b2c3d4 // microsecond timestamps
	pcapVersionMajor = 2
	pcapVersionMinor = 4
	// PcapSnapLen is the snapshot length a tap declares in its file's
	// header: longer than any IP packet without jumbograms, so nothing is
	// cut.
	PcapSnapLen = 262144
	// LinkTypeRaw is the pcap link type of a tap's file: each record is
	// a bare IPv4 or IPv6 packet, told apart by its version nibble.
	LinkTypeRaw = 101
)

// pcapng constants (draft-ietf-opsawg-pcapng): block types, option
// codes and the values TapNg writes.
const (
	ngSectionHeader  = 0x0a0d0d0a
	ngByteOrderMagic = 0x1a2b3c4d
	ngInterfaceDesc  = 1
	ngEnhancedPacket = 6

	ngOptEnd       = 0
	ngOptUserAppl  = 4 // shb_userappl
	ngOptIfName    = 2 // if_name
	ngOptIfTSResol = 9 // if_tsresol
	ngOptEPBFlags  = 2 // epb_flags

	// epb_flags bits 0-1 hold the direction (§4.3.1): 01 inbound, 10
	// outbound.
	ngFlagInbound  = 1
	ngFlagOutbound = 2
)

// TapEndpoint wraps an Endpoint and writes every packet that passes
// through it, read or written, to a pcap or pcapng capture. Make one with
// Tap or TapNg.
//
// A TapEndpoint is also an Offloader (see tap_offload.go): if ep is one
// with its offloads on, so is the tap, and the large TCP segments that
// cross it are recorded as the device carries them.
type TapEndpoint struct {
	ep  Endpoint
	off Offloader // ep, if it is an Offloader
	now func() time.Time
	ng  bool // pcapng rather than pcap

	mu      sync.Mutex
	w       io.Writer
	hdr     [28]byte
	tail    [3 + 16]byte
	err     error  // the first error writing the capture
	scratch []byte // the captured copy of an offloaded packet, under mu
}

var (
	_ Endpoint  = (*TapEndpoint)(nil)
	_ Offloader = (*TapEndpoint)(nil)
)

// Tap returns an Endpoint that behaves like ep and also writes each
// packet it reads or writes to w as a pcap file (link type LINKTYPE_RAW,
// microsecond timestamps), which tcpdump, tshark and Wireshark read. The
// file header is written at once, so a capture with no packets is still
// a valid file.
//
// A packet is recorded when ep has read or sent it: after ReadPackets
// returns (cut to the buffer, with its full length as the original
// length, when it did not fit) and after WritePackets returns, for the
// packets it reports sent. The wrapped endpoint's WritePackets runs under
// the tap's lock, so the capture keeps the wire's order (a reply is never
// recorded before the packet it answers) at the cost of serializing
// concurrent writers. Writes to w are serialized, so any io.Writer will
// do; wrap a file in a bufio.Writer to keep the cost per packet
// down. A failure to write the capture never disturbs the link: the tap
// stops recording and Err reports why.
//
// If ep is an Offloader, the tap passes its offload path through
// (Offload, ReadPacketsOffload, WriteOffload): a stack uses it exactly
// when it would use ep's, and the TCP segments of up to MaxOffloadPacket
// bytes that cross are recorded whole, with their checksums completed in
// the record.
func Tap(ep Endpoint, w io.Writer) *TapEndpoint {
	t := &TapEndpoint{ep: ep, w: w, now: time.Now}
	t.off, _ = ep.(Offloader)
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagic)
	binary.LittleEndian.PutUint16(h[4:], pcapVersionMajor)
	binary.LittleEndian.PutUint16(h[6:], pcapVersionMinor)
	// thiszone and sigfigs, h[8:16], stay zero.
	binary.LittleEndian.PutUint32(h[16:], PcapSnapLen)
	binary.LittleEndian.PutUint32(h[20:], LinkTypeRaw)
	_, t.err = w.Write(h[:])
	return t
}

// MTU returns the wrapped endpoint's MTU.
func (t *TapEndpoint) MTU() int { return t.ep.MTU() }

// TapNg is Tap writing pcapng instead (draft-ietf-opsawg-pcapng), as
// `--pcap FILE` does: a little-endian Section Header Block naming
// tcpstate as the application, one Interface Description Block
// (LINKTYPE_RAW, snap length PcapSnapLen, nanosecond timestamps), then
// one Enhanced Packet Block per packet whose epb_flags option records its
// direction: inbound for what ep read, outbound for what it sent. tshark
// and Wireshark show the direction; tcpdump reads the file too.
//
// Everything Tap says holds here: the section and interface blocks are
// written at once, writes are serialized, a write error stops the
// recording without disturbing the link (Err reports it), and Close
// flushes a writer that has a Flush method. Wrap a file in a bufio.Writer
// and let Close flush it (or call Flush to make what has been recorded so
// far readable), then close the file.
func TapNg(ep Endpoint, w io.Writer) *TapEndpoint {
	t := &TapEndpoint{ep: ep, w: w, now: time.Now, ng: true}
	t.off, _ = ep.(Offloader)
	le := binary.LittleEndian
	// Section Header Block (§4.1): byte-order magic, version 1.0,
	// section length unknown (-1), shb_userappl.
	shb := le.AppendUint32(nil, ngSectionHeader)
	shb = le.AppendUint32(shb, 0) // total length, set below
	shb = le.AppendUint32(shb, ngByteOrderMagic)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	shb = appendNgOption(shb, ngOptUserAppl, []byte("tcpstate"))
	shb = appendNgOption(shb, ngOptEnd, nil)
	shb = finishNgBlock(shb)
	// Interface Description Block (§4.2): LINKTYPE_RAW, snap length,
	// if_name, if_tsresol 9 (10^-9 s).
	idb := le.AppendUint32(nil, ngInterfaceDesc)
	idb = le.AppendUint32(idb, 0)
	idb = le.AppendUint16(idb, LinkTypeRaw)
	idb = le.AppendUint16(idb, 0)
	idb = le.AppendUint32(idb, PcapSnapLen)
	idb = appendNgOption(idb, ngOptIfName, []byte("tcpstate"))
	idb = appendNgOption(idb, ngOptIfTSResol, []byte{9})
	idb = appendNgOption(idb, ngOptEnd, nil)
	idb = finishNgBlock(idb)
	_, t.err = w.Write(append(shb, idb...))
	return t
}

// appendNgOption appends a pcapng option: code, length, value padded to
// 32 bits (§3.5).
func appendNgOption(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// finishNgBlock appends the trailing total length to a block that has
// its type, a placeholder length and its body, and sets the length
// (§3.1).
func finishNgBlock(b []byte) []byte {
	n := uint32(len(b) + 4)
	binary.LittleEndian.PutUint32(b[4:], n)
	return binary.LittleEndian.AppendUint32(b, n)
}

// ReadPackets reads from the wrapped endpoint and records what it read.
func (t *TapEndpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	n, err := t.ep.ReadPackets(bufs, sizes)
	if n > 0 {
		t.mu.Lock()
		ts := t.now()
		for i := 0; i < n; i++ {
			t.record(ts, bufs[i][:min(sizes[i], len(bufs[i]))], sizes[i], ngFlagInbound)
		}
		t.mu.Unlock()
	}
	return n, err
}

// WritePackets writes to the wrapped endpoint and records the packets it
// sent.
func (t *TapEndpoint) WritePackets(pkts [][]byte) (int, error) {
	// The lock is held across the write, so that a reply the link
	// delivers at once (a kernel answers within microseconds) cannot be
	// recorded by ReadPackets before the packet it answers: the capture
	// keeps the order of the wire.
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.ep.WritePackets(pkts)
	if n > 0 {
		ts := t.now()
		for _, p := range pkts[:n] {
			t.record(ts, p, len(p), ngFlagOutbound)
		}
	}
	return n, err
}

// Close closes the wrapped endpoint. If the capture's writer has a Flush
// method (a bufio.Writer does), Close calls it, so that the capture is
// complete once Close returns; Close does not close the writer. It
// returns the wrapped endpoint's error, if any, or else the capture's.
func (t *TapEndpoint) Close() error {
	err := t.ep.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	if f, ok := t.w.(interface{ Flush() error }); ok && t.err == nil {
		t.err = f.Flush()
	}
	if err == nil {
		err = t.err
	}
	return err
}

// Flush flushes the capture's writer, if it has a Flush method (a
// bufio.Writer does), so that what has been recorded so far can be read;
// it returns the capture's first error, if any. It is safe to call while
// packets flow.
func (t *TapEndpoint) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f, ok := t.w.(interface{ Flush() error }); ok && t.err == nil {
		t.err = f.Flush()
	}
	return t.err
}

// Err returns the first error met writing the capture, or nil. After an
// error the tap records nothing more.
func (t *TapEndpoint) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// record writes one pcap record or pcapng Enhanced Packet Block; dir is
// the direction for epb_flags. t.mu must be held.
func (t *TapEndpoint) record(ts time.Time, p []byte, orig int, dir uint32) {
	if t.err != nil {
		return
	}
	if len(p) > PcapSnapLen {
		p = p[:PcapSnapLen]
	}
	if t.ng {
		t.recordNg(ts, p, orig, dir)
		return
	}
	// A 16-byte header (seconds, microseconds, captured length, original
	// length) and the captured bytes (draft-ietf-opsawg-pcap §5).
	us := ts.UnixMicro()
	binary.LittleEndian.PutUint32(t.hdr[0:], uint32(us/1e6))
	binary.LittleEndian.PutUint32(t.hdr[4:], uint32(us%1e6))
	binary.LittleEndian.PutUint32(t.hdr[8:], uint32(len(p)))
	binary.LittleEndian.PutUint32(t.hdr[12:], uint32(orig))
	if _, t.err = t.w.Write(t.hdr[:16]); t.err != nil {
		return
	}
	_, t.err = t.w.Write(p)
}

// recordNg writes an Enhanced Packet Block (§4.3): interface 0, the
// timestamp in nanoseconds as two 32-bit halves, captured and original
// lengths, the bytes padded to 32 bits, the epb_flags option and the end
// of options, and the trailing length.
func (t *TapEndpoint) recordNg(ts time.Time, p []byte, orig int, dir uint32) {
	le := binary.LittleEndian
	pad := (4 - len(p)%4) % 4
	const fixed = 28 + 8 + 4 + 4 // header, epb_flags, opt_endofopt, trailer
	total := uint32(fixed + len(p) + pad)
	ns := uint64(ts.UnixNano())
	h := t.hdr[:28]
	le.PutUint32(h[0:], ngEnhancedPacket)
	le.PutUint32(h[4:], total)
	le.PutUint32(h[8:], 0)
	le.PutUint32(h[12:], uint32(ns>>32))
	le.PutUint32(h[16:], uint32(ns))
	le.PutUint32(h[20:], uint32(len(p)))
	le.PutUint32(h[24:], uint32(orig))
	if _, t.err = t.w.Write(h); t.err != nil {
		return
	}
	if _, t.err = t.w.Write(p); t.err != nil {
		return
	}
	// Zero padding, then the options and the trailer.
	tail := t.tail[:pad+16]
	clear(tail[:pad])
	o := tail[pad:]
	le.PutUint16(o[0:], ngOptEPBFlags)
	le.PutUint16(o[2:], 4)
	le.PutUint32(o[4:], dir)
	le.PutUint32(o[8:], 0) // opt_endofopt
	le.PutUint32(o[12:], total)
	_, t.err = t.w.Write(tail)
}
