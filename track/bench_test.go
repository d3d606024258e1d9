package track

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/track/capture"
	"github.com/tcpstate/tcpstate/track/tracktest"
)

// benchCapture is the 2,000,000-packet capture the benchmarks share,
// written once per process.
var benchCapture struct {
	once sync.Once
	path string
	st   tracktest.Stats
	err  error
}

func bigCapture(b *testing.B) (string, tracktest.Stats) {
	benchCapture.once.Do(func() {
		dir, err := os.MkdirTemp("", "trackbench")
		if err != nil {
			benchCapture.err = err
			return
		}
		p := filepath.Join(dir, "big.pcap")
		f, err := os.Create(p)
		if err != nil {
			benchCapture.err = err
			return
		}
		benchCapture.st, benchCapture.err = tracktest.Write(f, tracktest.Config{Seed: 1, Packets: 2_000_000})
		if err := f.Close(); benchCapture.err == nil {
			benchCapture.err = err
		}
		benchCapture.path = p
	})
	if benchCapture.err != nil {
		b.Fatal(benchCapture.err)
	}
	return benchCapture.path, benchCapture.st
}

// shardPath reads the capture at path into a Sharded of n workers.
func shardPath(path string, cfg Config, n int) (*Sharded, error) {
	rd, err := capture.Open(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	s := NewSharded(cfg, n)
	if err := feedAll(rd, func(p *capture.Packet) bool { s.Feed(p); return true }); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// tsharkRun is tshark's time and connection count on the benchmark
// capture, measured once per process.
var tsharkRun struct {
	once  sync.Once
	d     time.Duration
	conns int
	err   error
}

// BenchmarkCapture reads a 2,000,000-packet capture and writes every
// connection as JSON, reporting packets/s, with one worker (one Tracker
// behind the reader) and with GOMAXPROCS workers (Sharded); it times
// `tshark -r FILE -q -z conv,tcp` on the same file once and reports the
// ratio and both connection counts (tshark's as tshark_conns).
func BenchmarkCapture(b *testing.B) {
	path, st := bigCapture(b)
	for _, n := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) { benchCapture1(b, path, st, n) })
	}
}

func benchCapture1(b *testing.B, path string, st tracktest.Stats, workers int) {
	b.SetBytes(st.Bytes)
	b.ReportAllocs()
	var conns int
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		s, err := shardPath(path, Config{}, workers)
		if err != nil {
			b.Fatal(err)
		}
		views := s.Snapshot(s.Last())
		s.Close()
		if err := WriteJSON(io.Discard, views); err != nil {
			b.Fatal(err)
		}
		conns = len(views)
	}
	per := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	b.ReportMetric(float64(st.Packets)/per.Seconds(), "packets/s")
	b.ReportMetric(float64(conns), "conns")
	if conns != st.Conns {
		b.Errorf("tracked %d connections, the generator wrote %d", conns, st.Conns)
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		b.Logf("no tshark: no comparison (%v)", err)
		return
	}
	tsharkRun.once.Do(func() {
		t0 := time.Now()
		out, err := exec.Command("tshark", "-r", path, "-q", "-z", "conv,tcp").Output()
		tsharkRun.d, tsharkRun.err = time.Since(t0), err
		tsharkRun.conns = strings.Count(string(out), "<->")
	})
	if tsharkRun.err != nil {
		b.Fatalf("tshark: %v", tsharkRun.err)
	}
	b.ReportMetric(float64(tsharkRun.conns), "tshark_conns")
	b.ReportMetric(tsharkRun.d.Seconds()/per.Seconds(), "x_tshark")
	if tsharkRun.conns != conns {
		b.Errorf("tshark counts %d connections, the tracker %d", tsharkRun.conns, conns)
	}
}

// handshakes feeds n handshakes (SYN, SYN,ACK, ACK), each on its own
// 4-tuple, all left open.
func handshakes(tr *Tracker, n int) {
	var p capture.Packet
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 1}), 443)
	for i := range n {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0a000000+uint32(i))
		cl := netip.AddrPortFrom(netip.AddrFrom4(a), uint16(32768+i%28000))
		t = t.Add(time.Microsecond)
		p = capture.Packet{T: t, Src: cl, Dst: srv, Flags: header.SYN, Seq: 1000, Window: 64240}
		p.Options.HasWindowScale, p.Options.WindowScale = true, 7
		tr.Feed(&p)
		p = capture.Packet{T: t, Src: srv, Dst: cl, Flags: header.SYN | header.ACK, Seq: 5000, Ack: 1001, Window: 65160}
		p.Options.HasWindowScale, p.Options.WindowScale = true, 7
		tr.Feed(&p)
		p = capture.Packet{T: t, Src: cl, Dst: srv, Flags: header.ACK, Seq: seqnum.Value(1001), Ack: 5001, Window: 502}
		tr.Feed(&p)
	}
}

// BenchmarkConnMemory holds 1,000,000 concurrent connections and reports
// the heap they take per connection (bytes/conn), and the size of a Conn
// (conn_size), the rest being the flow table's and the list's references.
func BenchmarkConnMemory(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		tr := New(Config{})
		handshakes(tr, n)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/n, "bytes/conn")
		b.ReportMetric(float64(unsafe.Sizeof(Conn{})), "conn_size")
		if got := len(tr.Snapshot(tr.Last())); got != n {
			b.Fatalf("%d connections, want %d", got, n)
		}
		runtime.KeepAlive(tr)
	}
}

// TestGeneratedCapture checks the generator and that the tracker counts
// as many connections as it wrote, with the kinds it wrote.
func TestGeneratedCapture(t *testing.T) {
	var buf, again bytes.Buffer
	st, err := tracktest.Write(&buf, tracktest.Config{Seed: 7, Packets: 20000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tracktest.Write(&again, tracktest.Config{Seed: 7, Packets: 20000}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("the same seed gave different captures")
	}
	if st.Packets < 20000 || int64(buf.Len()) != st.Bytes || st.IPv6 == 0 || st.Refused == 0 || st.Aborted == 0 ||
		st.LeftOpen == 0 || st.MidStream == 0 || st.Retransmissions == 0 {
		t.Fatalf("stats %+v, file %d bytes", st, buf.Len())
	}
	tr := trackBytes(t, buf.Bytes(), Config{})
	if tr.Packets() != uint64(st.Packets) {
		t.Errorf("tracker fed %d packets, generator wrote %d", tr.Packets(), st.Packets)
	}
	views := tr.Snapshot(tr.Last())
	if len(views) != st.Conns {
		t.Errorf("%d connections tracked, %d generated", len(views), st.Conns)
	}
	var v6, mid, refused, open int
	var retrans uint64
	for i := range views {
		v := &views[i]
		if v.Client.Addr().Is6() {
			v6++
		}
		if v.MidStream {
			mid++
		}
		if v.ZeekState == "REJ" {
			refused++
		}
		if v.ClientState == tcp.Established && v.ServerState == tcp.Established {
			open++
		}
		retrans += v.Retrans[C2S] + v.Retrans[S2C]
	}
	if v6 != st.IPv6 || mid != st.MidStream || refused != st.Refused || open < st.LeftOpen {
		t.Errorf("IPv6 %d/%d, mid-stream %d/%d, refused %d/%d, open %d (>= %d left open)",
			v6, st.IPv6, mid, st.MidStream, refused, st.Refused, open, st.LeftOpen)
	}
	if retrans != uint64(st.Retransmissions) {
		t.Errorf("%d retransmissions counted, %d generated", retrans, st.Retransmissions)
	}
}

// TestDoneStreamsFinalConnections checks Config.Done: the connections it
// hands over plus those left at the end are exactly the connections, with
// the same JSON, that a tracker without Done shows, and it keeps fewer in
// memory.
func TestDoneStreamsFinalConnections(t *testing.T) {
	var buf bytes.Buffer
	// A slow rate, so the capture outlasts conntrack's and IPVS's timers.
	if _, err := tracktest.Write(&buf, tracktest.Config{Seed: 3, Packets: 30000, Rate: 20}); err != nil {
		t.Fatal(err)
	}
	run := func(done func(*ConnView)) *Tracker { return trackBytes(t, buf.Bytes(), Config{Done: done}) }
	lines := func(views []ConnView) []string {
		var b bytes.Buffer
		if err := WriteJSON(&b, views); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(b.String()), "\n")
	}
	all := run(nil)
	want := lines(all.Snapshot(all.Last()))
	var streamed []ConnView
	tr := run(func(v *ConnView) { streamed = append(streamed, *v) })
	tr.Flush(tr.Last())
	held := len(tr.Conns())
	got := append(lines(streamed), lines(tr.Snapshot(tr.Last()))...)
	if len(streamed) == 0 || held >= len(want) {
		t.Fatalf("%d streamed, %d held of %d", len(streamed), held, len(want))
	}
	sameLines(t, want, got)
	if tr.Packets() != all.Packets() {
		t.Errorf("packets %d vs %d", tr.Packets(), all.Packets())
	}
}
