package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestPcapInPlace checks the records read in place from the buffer (no
// copy): a record larger than the buffer still reads, the offset a corrupt
// record's error names is where that record starts, and a record cut short
// is a truncated file.
func TestPcapInPlace(t *testing.T) {
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	big := make([]byte, 70<<10) // past the 64 KiB buffer: copied
	big[0] = 0x45
	recs := []record{{data: big, wire: len(big), ts: base}}
	for i := range 3 {
		data := make([]byte, 40+i)
		data[0] = 0x45 // an IPv4 header that is not TCP: counted, skipped
		recs = append(recs, record{data: data, wire: len(data), ts: base.Add(time.Duration(i+1) * time.Second)})
	}
	good := pcapFile(binary.LittleEndian, false, LinkRaw, 1<<18, recs)

	r, err := NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if s := r.Stats(); s.Frames != 4 {
		t.Fatalf("%d frames, want 4", s.Frames)
	}

	// A corrupt length after the good records: the error names the
	// offset where the bad record starts.
	bad := binary.LittleEndian.AppendUint32(append([]byte(nil), good...), 0)
	bad = binary.LittleEndian.AppendUint32(bad, 0)
	bad = binary.LittleEndian.AppendUint32(bad, 1<<30)
	bad = binary.LittleEndian.AppendUint32(bad, 1<<30)
	r, err = NewReader(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	if want := fmt.Sprintf("at byte %d", len(good)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Next = %v, want an error %q", err, want)
	}

	// A record cut short.
	r, err = NewReader(bytes.NewReader(good[:len(good)-100]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrTruncatedFile) {
		t.Fatalf("Next = %v, want ErrTruncatedFile", err)
	}
	r, err = NewReader(bytes.NewReader(good[:24+16+len(big)+16+20]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrTruncatedFile) || !strings.Contains(err.Error(), "20 of 40 bytes") {
		t.Fatalf("Next = %v, want ErrTruncatedFile, 20 of 40 bytes", err)
	}
}
