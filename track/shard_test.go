package track

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tcpstate/tcpstate/track/capture"
	"github.com/tcpstate/tcpstate/track/tracktest"
)

// feedSharded reads a capture into a Sharded of n workers.
func feedSharded(t *testing.T, data []byte, cfg Config, n int) *Sharded {
	t.Helper()
	rd, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSharded(cfg, n)
	if err := feedAll(rd, func(p *capture.Packet) bool { s.Feed(p); return true }); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

func jsonLines(t *testing.T, views []ConnView) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, views); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestShardedSameOutput checks that a Sharded gives, for any number of
// workers, the same snapshot as one Tracker (line for line, in the same
// order), and the same streamed views (Config.Done) in the same order
// as one worker.
func TestShardedSameOutput(t *testing.T) {
	var buf bytes.Buffer
	if _, err := tracktest.Write(&buf, tracktest.Config{Seed: 5, Packets: 40000, Rate: 20}); err != nil {
		t.Fatal(err)
	}
	one := trackBytes(t, buf.Bytes(), Config{})
	want := jsonLines(t, one.Snapshot(one.Last()))
	var streamWant string
	for _, n := range []int{1, 2, 3, 4} {
		s := feedSharded(t, buf.Bytes(), Config{}, n)
		if s.Packets() != one.Packets() || !s.First().Equal(one.First()) || !s.Last().Equal(one.Last()) {
			t.Errorf("%d workers: packets %d %v..%v, tracker %d %v..%v", n, s.Packets(), s.First(), s.Last(),
				one.Packets(), one.First(), one.Last())
		}
		if got := jsonLines(t, s.Snapshot(s.Last())); got != want {
			t.Errorf("%d workers: snapshot differs from one tracker's (%d vs %d lines)", n,
				strings.Count(got, "\n"), strings.Count(want, "\n"))
		}
		s.Close()

		var streamed []ConnView
		s = feedSharded(t, buf.Bytes(), Config{Done: func(v *ConnView) { streamed = append(streamed, *v) }}, n)
		s.Flush(s.Last())
		rest := s.Snapshot(s.Last())
		s.Close()
		got := jsonLines(t, streamed) + "--\n" + jsonLines(t, rest)
		if len(streamed) == 0 {
			t.Fatalf("%d workers: nothing streamed", n)
		}
		if n == 1 {
			streamWant = got
			// Together, streamed and held are the connections one
			// tracker shows.
			all := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
			parts := strings.Split(strings.ReplaceAll(strings.TrimSuffix(got, "\n"), "--\n", ""), "\n")
			sameLines(t, all, parts)
		} else if got != streamWant {
			t.Errorf("%d workers: streamed output differs from one worker's", n)
		}
	}
}
