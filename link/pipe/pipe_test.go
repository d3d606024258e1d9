package pipe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/link"
)

// numbered returns a packet of size bytes whose first four bytes are i.
func numbered(i uint32, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint32(p, i)
	for j := 4; j < size; j++ {
		p[j] = byte(int(i) + j)
	}
	return p
}

func bufs(n, size int) ([][]byte, []int) {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, size)
	}
	return b, make([]int, n)
}

// readAll reads until want packets have arrived or the wait passes, and
// returns copies of them.
func readAll(t *testing.T, ep link.Endpoint, want int, wait time.Duration) [][]byte {
	t.Helper()
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, sizes := bufs(64, 2048)
		for len(got) < want {
			n, err := ep.ReadPackets(b, sizes)
			if err != nil {
				return
			}
			for i := 0; i < n; i++ {
				got = append(got, append([]byte(nil), b[i][:sizes[i]]...))
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(wait):
		ep.Close()
		<-done
	}
	return got
}

func checkInvariant(t *testing.T, s Stats) {
	t.Helper()
	if s.Delivered+uint64(s.Queued)+s.Dropped() != s.Sent+s.Duplicated {
		t.Errorf("stats do not add up: %+v", s)
	}
}

func TestBothWays(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	defer b.Close()
	if a.MTU() != DefaultMTU || b.MTU() != DefaultMTU {
		t.Fatalf("MTU = %d, %d; want %d", a.MTU(), b.MTU(), DefaultMTU)
	}
	for _, dir := range []struct {
		name     string
		from, to *Endpoint
	}{{"a→b", a, b}, {"b→a", b, a}} {
		buf := numbered(7, 100)
		want := append([]byte(nil), buf...)
		if n, err := dir.from.WritePackets([][]byte{buf, buf[:10]}); n != 2 || err != nil {
			t.Fatalf("%s: WritePackets = %d, %v", dir.name, n, err)
		}
		// The writer may reuse its buffer at once.
		for i := range buf {
			buf[i] = 0xff
		}
		got := readAll(t, dir.to, 2, time.Second)
		if len(got) != 2 || !bytes.Equal(got[0], want) || !bytes.Equal(got[1], want[:10]) {
			t.Fatalf("%s: read %x, want %x and %x", dir.name, got, want, want[:10])
		}
		s := dir.from.Stats()
		if s.Sent != 2 || s.Delivered != 2 || s.SentBytes != 110 || s.Dropped() != 0 {
			t.Errorf("%s: stats %+v", dir.name, s)
		}
		checkInvariant(t, s)
	}
}

func TestShortBufferTruncates(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	defer b.Close()
	p := numbered(1, 300)
	a.WritePackets([][]byte{p})
	buf := make([]byte, 50)
	sizes := make([]int, 1)
	n, err := b.ReadPackets([][]byte{buf}, sizes)
	if n != 1 || err != nil || sizes[0] != 300 || !bytes.Equal(buf, p[:50]) {
		t.Fatalf("ReadPackets = %d, %v, size %d, %x", n, err, sizes[0], buf)
	}
}

func TestTooBig(t *testing.T) {
	a, b := New(Config{MTU: 100})
	defer a.Close()
	defer b.Close()
	n, err := a.WritePackets([][]byte{make([]byte, 100), make([]byte, 101), make([]byte, 1)})
	if n != 1 || !errors.Is(err, ErrTooBig) {
		t.Fatalf("WritePackets = %d, %v; want 1, ErrTooBig", n, err)
	}
	if s := a.Stats(); s.Sent != 1 {
		t.Errorf("Sent = %d, want 1", s.Sent)
	}
}

func TestQueueFullDrops(t *testing.T) {
	a, b := New(Config{QueueLen: 8})
	defer a.Close()
	defer b.Close()
	var pkts [][]byte
	for i := range 11 {
		pkts = append(pkts, numbered(uint32(i), 60))
	}
	if n, err := a.WritePackets(pkts); n != 11 || err != nil {
		t.Fatalf("WritePackets = %d, %v; want 11, nil", n, err)
	}
	s := a.Stats()
	if s.QueueFull != 3 || s.Queued != 8 {
		t.Fatalf("stats %+v; want 3 dropped, 8 queued", s)
	}
	checkInvariant(t, s)
	got := readAll(t, b, 8, time.Second)
	for i, p := range got {
		if !bytes.Equal(p, pkts[i]) {
			t.Fatalf("packet %d = %x, want %x", i, p, pkts[i])
		}
	}
	// Room again.
	a.WritePackets(pkts[:1])
	if s := a.Stats(); s.QueueFull != 3 || s.Queued != 1 || s.Delivered != 8 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBlock(t *testing.T) {
	a, b := New(Config{QueueLen: 4, Block: true})
	defer b.Close()
	var pkts [][]byte
	for i := range 10 {
		pkts = append(pkts, numbered(uint32(i), 60))
	}
	wrote := make(chan int)
	go func() {
		n, _ := a.WritePackets(pkts)
		wrote <- n
	}()
	select {
	case n := <-wrote:
		t.Fatalf("WritePackets returned %d with a full queue", n)
	case <-time.After(50 * time.Millisecond):
	}
	got := readAll(t, b, 10, 2*time.Second)
	if len(got) != 10 {
		t.Fatalf("read %d packets, want 10", len(got))
	}
	for i, p := range got {
		if !bytes.Equal(p, pkts[i]) {
			t.Fatalf("packet %d = %x, want %x", i, p, pkts[i])
		}
	}
	if n := <-wrote; n != 10 {
		t.Fatalf("WritePackets = %d, want 10", n)
	}
	if s := a.Stats(); s.Dropped() != 0 || s.Delivered != 10 {
		t.Fatalf("stats %+v", s)
	}

	// A writer blocked on a full queue returns ErrClosed when its own
	// end closes.
	a.WritePackets(pkts[:4])
	errc := make(chan error)
	go func() {
		_, err := a.WritePackets(pkts[:1])
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, link.ErrClosed) {
			t.Fatalf("blocked WritePackets after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake a blocked writer")
	}
}

func TestBlockPeerClose(t *testing.T) {
	a, b := New(Config{QueueLen: 1, Block: true})
	defer a.Close()
	a.WritePackets([][]byte{{0x45}})
	done := make(chan int)
	go func() {
		n, _ := a.WritePackets([][]byte{{0x45}, {0x45}})
		done <- n
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case n := <-done:
		if n != 2 {
			t.Fatalf("WritePackets = %d, want 2", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("closing the peer did not wake a blocked writer")
	}
	s := a.Stats()
	if s.PeerClosed != 3 {
		t.Fatalf("stats %+v; want PeerClosed 3", s)
	}
	checkInvariant(t, s)
}

func TestClose(t *testing.T) {
	a, b := New(Config{})
	errc := make(chan error)
	go func() {
		bb, sizes := bufs(4, 1500)
		_, err := b.ReadPackets(bb, sizes)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != link.ErrClosed {
			t.Fatalf("blocked ReadPackets after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake a blocked reader")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	bb, sizes := bufs(1, 1500)
	if _, err := b.ReadPackets(bb, sizes); err != link.ErrClosed {
		t.Fatalf("ReadPackets after Close: %v", err)
	}
	if _, err := b.WritePackets([][]byte{{1}}); err != link.ErrClosed {
		t.Fatalf("WritePackets after Close: %v", err)
	}
	// The peer's writes go nowhere, and are counted.
	if n, err := a.WritePackets([][]byte{{1}, {2}}); n != 2 || err != nil {
		t.Fatalf("WritePackets to a closed peer = %d, %v", n, err)
	}
	if s := a.Stats(); s.PeerClosed != 2 {
		t.Fatalf("stats %+v", s)
	}
	a.Close()
}

func TestLossIsSeeded(t *testing.T) {
	run := func(seed uint64) (lost []int, s Stats) {
		a, b := New(Config{Loss: 0.3, Seed: seed, QueueLen: 2000})
		defer a.Close()
		defer b.Close()
		const n = 1000
		for i := range n {
			a.WritePackets([][]byte{numbered(uint32(i), 20)})
		}
		got := readAll(t, b, n-int(a.Stats().Lost), time.Second)
		next := 0
		for _, p := range got {
			i := int(binary.BigEndian.Uint32(p))
			for ; next < i; next++ {
				lost = append(lost, next)
			}
			next = i + 1
		}
		for ; next < n; next++ {
			lost = append(lost, next)
		}
		return lost, a.Stats()
	}
	l1, s1 := run(1)
	l2, _ := run(1)
	l3, _ := run(2)
	if len(l1) < 250 || len(l1) > 350 || uint64(len(l1)) != s1.Lost {
		t.Fatalf("lost %d of 1000 at 30%% (stats %+v)", len(l1), s1)
	}
	checkInvariant(t, s1)
	if !equalInts(l1, l2) {
		t.Fatal("the same seed lost different packets")
	}
	if equalInts(l1, l3) {
		t.Fatal("different seeds lost the same packets")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDuplicate(t *testing.T) {
	a, b := New(Config{Duplicate: 0.5, Seed: 3})
	defer a.Close()
	defer b.Close()
	for i := range 200 {
		a.WritePackets([][]byte{numbered(uint32(i), 20)})
	}
	s := a.Stats()
	if s.Duplicated < 60 || s.Duplicated > 140 {
		t.Fatalf("duplicated %d of 200 at 50%%", s.Duplicated)
	}
	got := readAll(t, b, 200+int(s.Duplicated), time.Second)
	seen := map[uint32]int{}
	for _, p := range got {
		seen[binary.BigEndian.Uint32(p)]++
	}
	dups := 0
	for i := range uint32(200) {
		switch seen[i] {
		case 1:
		case 2:
			dups++
		default:
			t.Fatalf("packet %d arrived %d times", i, seen[i])
		}
	}
	if uint64(dups) != s.Duplicated {
		t.Fatalf("%d arrived twice, stats say %d", dups, s.Duplicated)
	}
	checkInvariant(t, a.Stats())
}

func TestReorder(t *testing.T) {
	a, b := New(Config{Reorder: 0.2, ReorderDelay: 5 * time.Millisecond, Seed: 4})
	defer a.Close()
	defer b.Close()
	const n = 300
	go func() {
		for i := range n {
			a.WritePackets([][]byte{numbered(uint32(i), 20)})
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	got := readAll(t, b, n, 5*time.Second)
	if len(got) != n {
		t.Fatalf("read %d packets, want %d", len(got), n)
	}
	seen := map[uint32]bool{}
	inversions := 0
	prev := uint32(0)
	for i, p := range got {
		v := binary.BigEndian.Uint32(p)
		if seen[v] {
			t.Fatalf("packet %d twice", v)
		}
		seen[v] = true
		if i > 0 && v < prev {
			inversions++
		}
		prev = v
	}
	s := a.Stats()
	if s.Reordered < 30 || inversions == 0 {
		t.Fatalf("reordered %d, %d inversions", s.Reordered, inversions)
	}
	checkInvariant(t, s)
}

func TestDelay(t *testing.T) {
	const delay = 30 * time.Millisecond
	a, b := New(Config{Delay: delay})
	defer a.Close()
	defer b.Close()
	start := time.Now()
	for i := range 5 {
		a.WritePackets([][]byte{numbered(uint32(i), 40)})
	}
	bb, sizes := bufs(1, 100)
	n, err := b.ReadPackets(bb, sizes)
	elapsed := time.Since(start)
	if n != 1 || err != nil {
		t.Fatalf("ReadPackets = %d, %v", n, err)
	}
	if elapsed < delay {
		t.Fatalf("packet arrived after %v, before the %v delay", elapsed, delay)
	}
	got := readAll(t, b, 4, time.Second)
	for i, p := range got {
		if v := binary.BigEndian.Uint32(p); v != uint32(i+1) {
			t.Fatalf("packet %d is %d; a plain delay must keep the order", i+1, v)
		}
	}
	// Close wakes a reader waiting for a held packet.
	a.WritePackets([][]byte{numbered(9, 40)})
	errc := make(chan error)
	go func() {
		_, err := b.ReadPackets(bb, sizes)
		errc <- err
	}()
	b.Close()
	select {
	case err := <-errc:
		if err != link.ErrClosed {
			t.Fatalf("ReadPackets = %v, want ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not wake a reader waiting on a delay")
	}
}

func TestCorrupt(t *testing.T) {
	a, b := New(Config{Corrupt: 1, Seed: 5})
	defer a.Close()
	defer b.Close()
	const n = 50
	var sent [][]byte
	for i := range n {
		p := numbered(uint32(i), 64)
		sent = append(sent, p)
		a.WritePackets([][]byte{p})
	}
	got := readAll(t, b, n, time.Second)
	if len(got) != n {
		t.Fatalf("read %d, want %d", len(got), n)
	}
	for i, p := range got {
		diff := 0
		for j := range p {
			if p[j] != sent[i][j] {
				diff++
			}
		}
		if diff != 1 {
			t.Fatalf("packet %d differs in %d bytes, want 1", i, diff)
		}
	}
	if s := a.Stats(); s.Corrupted != n {
		t.Fatalf("Corrupted = %d, want %d", s.Corrupted, n)
	}
}

func TestConcurrentWriters(t *testing.T) {
	a, b := New(Config{Block: true, QueueLen: 64})
	defer a.Close()
	defer b.Close()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 100)
			for i := range each {
				binary.BigEndian.PutUint32(p, uint32(w<<16|i))
				if _, err := a.WritePackets([][]byte{p, p[:50]}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := readAll(t, b, writers*each*2, 10*time.Second)
	wg.Wait()
	if len(got) != writers*each*2 {
		t.Fatalf("read %d packets, want %d", len(got), writers*each*2)
	}
	// Each writer's packets arrive in its own order. (With Block a batch
	// may be interleaved with another writer's, while it waits for room.)
	next := make([]int, writers)
	for _, p := range got {
		v := binary.BigEndian.Uint32(p)
		w, seq := int(v>>16), int(v&0xffff)
		want := 100
		if next[w]%2 == 1 {
			want = 50
		}
		if seq != next[w]/2 || len(p) != want {
			t.Fatalf("writer %d: got packet %d (len %d), want %d (len %d)", w, seq, len(p), next[w]/2, want)
		}
		next[w]++
	}
}

// TestNoAllocs checks that a warmed-up pipe allocates nothing per packet.
func TestNoAllocs(t *testing.T) {
	a, b := New(Config{})
	defer a.Close()
	defer b.Close()
	pkts := make([][]byte, 32)
	for i := range pkts {
		pkts[i] = make([]byte, 1500)
	}
	rb, sizes := bufs(32, 1500)
	round := func() {
		a.WritePackets(pkts)
		b.ReadPackets(rb, sizes)
	}
	round()
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Fatalf("%v allocations per round of 32 packets, want 0", n)
	}
}
