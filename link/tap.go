package link

import (
	"encoding/binary"
	"io"
	"sync"
	"time"
)

// Pcap file constants: the classic libpcap format, little-endian, with
// microsecond timestamps, carrying raw IP packets.
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

// TapEndpoint wraps an Endpoint and writes every packet that passes
// through it, read or written, to a pcap capture. Make one with Tap.
type TapEndpoint struct {
	ep  Endpoint
	now func() time.Time

	mu  sync.Mutex
	w   io.Writer
	hdr [16]byte
	err error // the first error writing the capture
}

var _ Endpoint = (*TapEndpoint)(nil)

// Tap returns an Endpoint that behaves like ep and also writes each
// packet it reads or writes to w as a pcap file (link type LINKTYPE_RAW,
// microsecond timestamps), which tcpdump, tshark and Wireshark read. The
// file header is written at once, so a capture with no packets is still
// a valid file.
//
// A packet is recorded when ep has read or sent it: after ReadPackets
// returns (cut to the buffer, with its full length as the original
// length, when it did not fit) and after WritePackets returns, for the
// packets it reports sent. Writes to w are serialized, so any io.Writer
// will do; wrap a file in a bufio.Writer to keep the cost per packet
// down. A failure to write the capture never disturbs the link: the tap
// stops recording and Err reports why.
func Tap(ep Endpoint, w io.Writer) *TapEndpoint {
	t := &TapEndpoint{ep: ep, w: w, now: time.Now}
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

// ReadPackets reads from the wrapped endpoint and records what it read.
func (t *TapEndpoint) ReadPackets(bufs [][]byte, sizes []int) (int, error) {
	n, err := t.ep.ReadPackets(bufs, sizes)
	if n > 0 {
		t.mu.Lock()
		ts := t.now()
		for i := 0; i < n; i++ {
			t.record(ts, bufs[i][:min(sizes[i], len(bufs[i]))], sizes[i])
		}
		t.mu.Unlock()
	}
	return n, err
}

// WritePackets writes to the wrapped endpoint and records the packets it
// sent.
func (t *TapEndpoint) WritePackets(pkts [][]byte) (int, error) {
	n, err := t.ep.WritePackets(pkts)
	if n > 0 {
		t.mu.Lock()
		ts := t.now()
		for _, p := range pkts[:n] {
			t.record(ts, p, len(p))
		}
		t.mu.Unlock()
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

// Err returns the first error met writing the capture, or nil. After an
// error the tap records nothing more.
func (t *TapEndpoint) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// record writes one pcap record: a 16-byte header (seconds, microseconds,
// captured length, original length) and the captured bytes; t.mu must be
// held.
func (t *TapEndpoint) record(ts time.Time, p []byte, orig int) {
	if t.err != nil {
		return
	}
	if len(p) > PcapSnapLen {
		p = p[:PcapSnapLen]
	}
	us := ts.UnixMicro()
	binary.LittleEndian.PutUint32(t.hdr[0:], uint32(us/1e6))
	binary.LittleEndian.PutUint32(t.hdr[4:], uint32(us%1e6))
	binary.LittleEndian.PutUint32(t.hdr[8:], uint32(len(p)))
	binary.LittleEndian.PutUint32(t.hdr[12:], uint32(orig))
	if _, t.err = t.w.Write(t.hdr[:]); t.err != nil {
		return
	}
	_, t.err = t.w.Write(p)
}
