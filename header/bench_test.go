package header

import (
	"testing"
)

// benchPacket returns an IPv4 data segment as a bulk sender emits it:
// timestamps and 1448 bytes of payload, 1500 bytes in all.
func benchPacket(b *testing.B) []byte {
	buf := make([]byte, 1600)
	payload := make([]byte, 1448)
	for i := range payload {
		payload[i] = byte(i)
	}
	n, err := BuildPacket(buf, v4a, v4b, 64,
		&TCPFields{SrcPort: 49152, DstPort: 80, Seq: 1, Ack: 1, Flags: ACK | PSH, Window: 501},
		&TCPOptions{TSVal: 1, TSEcr: 2, HasTimestamps: true}, payload)
	if err != nil {
		b.Fatal(err)
	}
	return buf[:n]
}

func BenchmarkParsePacket(b *testing.B) {
	pkt := benchPacket(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	var p Packet
	var o TCPOptions
	for b.Loop() {
		if err := ParsePacket(pkt, &p); err != nil {
			b.Fatal(err)
		}
		if err := p.TCP.Options(&o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildPacket(b *testing.B) {
	buf := make([]byte, 1600)
	payload := make([]byte, 1448)
	f := TCPFields{SrcPort: 49152, DstPort: 80, Seq: 1, Ack: 1, Flags: ACK | PSH, Window: 501}
	o := TCPOptions{TSVal: 1, TSEcr: 2, HasTimestamps: true}
	b.ReportAllocs()
	b.SetBytes(1500)
	for b.Loop() {
		if _, err := BuildPacket(buf, v4a, v4b, 64, &f, &o, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	var s uint32
	for b.Loop() {
		s = Checksum(buf, s)
	}
	_ = s
}
