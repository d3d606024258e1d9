package track

import (
	"bytes"
	"io"
	"testing"

	"github.com/tcpstate/tcpstate/track/capture"
)

// feedAll hands every packet rd reads to feed, until the capture ends or
// feed returns false.
func feedAll(rd *capture.Reader, feed func(*capture.Packet) bool) error {
	for {
		p, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !feed(p) {
			return nil
		}
	}
}

// trackBytes runs a Tracker with cfg over a capture held in memory.
func trackBytes(t testing.TB, data []byte, cfg Config) *Tracker {
	t.Helper()
	rd, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := New(cfg)
	if err := feedAll(rd, func(p *capture.Packet) bool { tr.Feed(p); return true }); err != nil {
		t.Fatal(err)
	}
	return tr
}

// sameLines fails t for each line that got holds more or fewer times than
// want, in any order.
func sameLines(t *testing.T, want, got []string) {
	t.Helper()
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	for l, n := range count {
		if n != 0 {
			t.Errorf("%+d: %s", n, l)
		}
	}
}
