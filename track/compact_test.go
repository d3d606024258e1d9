package track

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/track/capture"
	"github.com/tcpstate/tcpstate/track/conntrack"
	"github.com/tcpstate/tcpstate/track/ipvs"
	"github.com/tcpstate/tcpstate/track/zeek"
)

// TestConnSize holds the per-connection budget: a Conn takes 288 bytes
// of its tracker's slab (with the flow table's and the list's 32-bit
// references, under 300 bytes per connection: BenchmarkConnMemory), with
// its parts at their documented sizes.
func TestConnSize(t *testing.T) {
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"Conn", unsafe.Sizeof(Conn{}), 288},
		{"conntrack.Entry", unsafe.Sizeof(conntrack.Entry{}), 48},
		{"ipvs.Entry", unsafe.Sizeof(ipvs.Entry{}), 16},
		{"zeek.Core", unsafe.Sizeof(zeek.Core{}), 40},
		{"dirStats", unsafe.Sizeof(dirStats{}), 32},
		{"epStore", unsafe.Sizeof(epStore{}), 32},
		{"connExt", unsafe.Sizeof(connExt{}), 128},
	} {
		if c.got > c.want {
			t.Errorf("%s is %d bytes, budget %d", c.what, c.got, c.want)
		}
	}
}

// TestSmallCountersSpill checks that the 8-bit zero-window and RST
// counters spill into the connection's extension without losing a count.
func TestSmallCountersSpill(t *testing.T) {
	h := newHarness(t, "10.0.0.1:40000", "10.0.0.2:80")
	h.pkt(true, S, 100, 0, 0)
	h.pkt(false, SA, 500, 101, 0)
	h.pkt(true, A, 101, 501, 0)
	for range 600 {
		h.now = h.now.Add(time.Millisecond)
		h.tr.Feed(&capture.Packet{T: h.now, Src: h.s, Dst: h.c, Flags: A, Seq: 501, Ack: 101})
	}
	v := h.tr.Snapshot(h.now)
	if len(v) != 1 || v[0].ZeroWindow[1] != 600 || v[0].ZeroWindow[0] != 0 {
		t.Fatalf("views %+v; want one connection with 600 zero windows from the server", v)
	}
	c := h.tr.Conns()[0]
	for range 600 {
		inc(c, &c.dir[0].rsts, 0, func(b *big) *uint64 { return &b.rsts })
	}
	if n := c.counters(0); n.rsts != 600 {
		t.Fatalf("RSTs %d, want 600", n.rsts)
	}
}

// TestIPv6Tuple checks the compact tuple for addresses that are not plain
// IPv4: IPv6, IPv4-mapped IPv6 and zoned addresses keep their identity.
func TestIPv6Tuple(t *testing.T) {
	for _, pair := range [][2]string{
		{"10.0.0.1:1", "10.0.0.2:2"},
		{"[2001:db8::1]:1000", "[2001:db8::2]:443"},
		{"[::ffff:10.0.0.1]:1000", "10.0.0.2:443"},
		{"[fe80::1%eth0]:1000", "[fe80::2%eth0]:22"},
	} {
		a, b := netip.MustParseAddrPort(pair[0]), netip.MustParseAddrPort(pair[1])
		var c Conn
		c.setTuple(a, b)
		if c.Client() != a || c.Server() != b || !c.matches(a, b) || !c.matches(b, a) {
			t.Errorf("%v: client %v server %v", pair, c.Client(), c.Server())
		}
		if c.is(0, b) || c.is(1, a) {
			t.Errorf("%v: endpoints confused", pair)
		}
		other := netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		if other != a && c.is(0, other) {
			t.Errorf("%v: %v taken for %v", pair, other, a)
		}
	}
}

// TestPendingStorage checks an endpoint's pending items, inline while
// there is one and allocated past that, against a plain slice under a
// random sequence of pushes, partial deliveries, drops and clears.
func TestPendingStorage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var e endpoint
	var ref []item
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 5:
			it := item{seq: seqnum.Value(rng.Uint32()), ack: seqnum.Value(rng.IntN(100)), pkt: int32(step), flags: header.ACK}
			e.push(it)
			ref = append(ref, it)
		case op < 7 && len(ref) > 0:
			k := rng.IntN(len(ref))
			e.deliver(k, recorder{})
			ref = append([]item(nil), ref[k+1:]...)
		case op < 9:
			upTo := seqnum.Value(rng.IntN(100))
			e.drop(upTo)
			out := ref[:0:0]
			for _, it := range ref {
				if !it.ack.GreaterThanEq(upTo) {
					out = append(out, it)
				}
			}
			ref = out
		default:
			e.setPending(nil)
			ref = nil
		}
		got := e.pending()
		if len(got) != len(ref) || (len(got) > 1) != (e.more != nil) {
			t.Fatalf("step %d: %d items (more %v), want %d", step, len(got), e.more != nil, len(ref))
		}
		for i := range ref {
			if got[i] != ref[i] {
				t.Fatalf("step %d: item %d is %+v, want %+v", step, i, got[i], ref[i])
			}
		}
	}
}
