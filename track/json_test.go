package track

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/track/tracktest"
)

// TestAppendJSONMatchesEncoder checks that the reflection-free writer
// gives the bytes encoding/json gives for JSONView, on every connection
// of a generated capture and on views with odd values (escapes, flags,
// zero and huge times, IPv6).
func TestAppendJSONMatchesEncoder(t *testing.T) {
	var buf bytes.Buffer
	if _, err := tracktest.Write(&buf, tracktest.Config{Seed: 9, Packets: 20000}); err != nil {
		t.Fatal(err)
	}
	tr := trackBytes(t, buf.Bytes(), Config{})
	views := tr.Snapshot(tr.Last())
	odd := ConnView{Client: netip.MustParseAddrPort("[fd00::1]:1"), Server: netip.MustParseAddrPort("10.0.0.1:65535"),
		ConntrackState: "SYN_SENT", ConntrackUnreplied: true, ConntrackExpire: 119 * time.Second,
		ZeekState: "a\"<b>&\\\n\u00e9", ZeekHistory: "ShADadFf", MidStream: true, Ended: true,
		First: time.Unix(0, 1), Last: time.Unix(1<<40, 123456789), Packets: [2]uint64{1 << 63, 0}}
	assured := odd
	assured.ConntrackUnreplied, assured.ConntrackAssured, assured.First = false, true, time.Time{}
	zoned := odd
	zoned.Client = netip.AddrPortFrom(netip.MustParseAddr("fe80::1%<eth\"0>"), 80)
	views = append(views, odd, assured, zoned, ConnView{})
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	for i := range views {
		if err := enc.Encode(views[i].JSON()); err != nil {
			t.Fatal(err)
		}
	}
	var got bytes.Buffer
	if err := WriteJSON(&got, views); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		g, w := bytes.Split(got.Bytes(), []byte("\n")), bytes.Split(want.Bytes(), []byte("\n"))
		for i := range min(len(g), len(w)) {
			if !bytes.Equal(g[i], w[i]) {
				t.Fatalf("line %d:\n got %s\nwant %s", i, g[i], w[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(g), len(w))
	}
}
