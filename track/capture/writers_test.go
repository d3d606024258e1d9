package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// The test captures are written three ways: by gopacket's pcapgo writers
// (an independent implementation of the formats), and by the hand-made
// writers below where pcapgo cannot (big-endian files, link types above
// 255, pcapng timestamp resolutions other than nanoseconds, Simple and
// obsolete Packet Blocks, several sections).

// pcapFile writes a classic pcap file by hand (draft-ietf-opsawg-pcap).
func pcapFile(order binary.AppendByteOrder, nano bool, link LinkType, snap uint32, recs []record) []byte {
	magic := uint32(pcapMagicMicro)
	if nano {
		magic = pcapMagicNano
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, snap)
	b = order.AppendUint32(b, uint32(link))
	for _, r := range recs {
		b = order.AppendUint32(b, uint32(r.ts.Unix()))
		frac := uint32(r.ts.Nanosecond())
		if !nano {
			frac /= 1000
		}
		b = order.AppendUint32(b, frac)
		b = order.AppendUint32(b, uint32(len(r.data)))
		b = order.AppendUint32(b, uint32(r.wire))
		b = append(b, r.data...)
	}
	return b
}

// pcapgoFile writes a classic little-endian pcap file with pcapgo.
func pcapgoFile(t testing.TB, nano bool, link LinkType, recs []record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nano {
		w = pcapgo.NewWriterNanos(&buf)
	}
	if err := w.WriteFileHeader(65535, layers.LinkType(link)); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		ci := gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: r.wire}
		if err := w.WritePacket(ci, r.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// ngFile writes a pcapng file with pcapgo's NgWriter: one section, one
// interface per link type met, nanosecond timestamps.
func ngFile(t testing.TB, recs []record) []byte {
	t.Helper()
	var buf bytes.Buffer
	ifIndex := map[LinkType]int{recs[0].link: 0}
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkType(recs[0].link))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		id, ok := ifIndex[r.link]
		if !ok {
			intf := pcapgo.DefaultNgInterface
			intf.LinkType = layers.LinkType(r.link)
			if id, err = w.AddInterface(intf); err != nil {
				t.Fatal(err)
			}
			ifIndex[r.link] = id
		}
		ci := gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: r.wire, InterfaceIndex: id}
		if err := w.WritePacket(ci, r.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ngw writes pcapng by hand (draft-ietf-opsawg-pcapng).
type ngw struct {
	b     []byte
	order binary.AppendByteOrder
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (w *ngw) block(typ uint32, body []byte) {
	body = pad4(body)
	total := uint32(12 + len(body))
	w.b = w.order.AppendUint32(w.b, typ)
	w.b = w.order.AppendUint32(w.b, total)
	w.b = append(w.b, body...)
	w.b = w.order.AppendUint32(w.b, total)
}

// opt encodes one option; end the list with opt(0, nil).
func (w *ngw) opt(code uint16, v []byte) []byte {
	b := w.order.AppendUint16(nil, code)
	b = w.order.AppendUint16(b, uint16(len(v)))
	return pad4(append(b, v...))
}

func (w *ngw) section() {
	body := w.order.AppendUint32(nil, ngByteOrderMagic)
	body = w.order.AppendUint16(body, 1)
	body = w.order.AppendUint16(body, 0)
	body = w.order.AppendUint64(body, ^uint64(0)) // length unknown
	body = append(body, w.opt(4, []byte("capture tests"))...)
	body = append(body, w.opt(0, nil)...)
	w.block(ngSectionHeader, body)
}

func (w *ngw) iface(link LinkType, snap uint32, opts ...[]byte) {
	body := w.order.AppendUint16(nil, uint16(link))
	body = w.order.AppendUint16(body, 0)
	body = w.order.AppendUint32(body, snap)
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, w.opt(0, nil)...)
	}
	w.block(ngInterfaceDesc, body)
}

func (w *ngw) epb(id uint32, ticks uint64, data []byte, wire int, opts ...[]byte) {
	body := w.order.AppendUint32(nil, id)
	body = w.order.AppendUint32(body, uint32(ticks>>32))
	body = w.order.AppendUint32(body, uint32(ticks))
	body = w.order.AppendUint32(body, uint32(len(data)))
	body = w.order.AppendUint32(body, uint32(wire))
	body = pad4(append(body, data...))
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, w.opt(0, nil)...)
	}
	w.block(ngEnhancedPacket, body)
}

func (w *ngw) spb(data []byte, wire int) {
	body := w.order.AppendUint32(nil, uint32(wire))
	w.block(ngSimplePacket, append(body, data...))
}

func (w *ngw) opb(id uint16, ticks uint64, data []byte, wire int) {
	body := w.order.AppendUint16(nil, id)
	body = w.order.AppendUint16(body, 0) // drops
	body = w.order.AppendUint32(body, uint32(ticks>>32))
	body = w.order.AppendUint32(body, uint32(ticks))
	body = w.order.AppendUint32(body, uint32(len(data)))
	body = w.order.AppendUint32(body, uint32(wire))
	w.block(ngObsoletePacket, append(body, data...))
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
