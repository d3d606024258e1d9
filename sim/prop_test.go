package sim

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// The property tests run one transfer per seed, each over an impairment
// profile and a pair of configurations the seed picks, and check what
// must hold whatever the network does (see checker) and at the end:
// every byte arrived intact and in order, both ways, and both sides
// reached CLOSED.
//
//	go test ./sim -run TestProperties                    a few hundred seeds
//	TCPSTATE_SEEDS=5000 go test ./sim -run TestProperties thousands
//	go test ./sim -run TestProperties -long              5000
//	TCPSTATE_SEED=1234 go test ./sim -run TestProperties -v
//	                                                     one seed, traced: on failure the
//	                                                     run's JSON lines and ladder are saved
var longProps = flag.Bool("long", false, "run the property tests over 5000 seeds (TCPSTATE_SEEDS overrides)")

// defaultSeeds keeps `go test ./...` quick on a small machine.
const defaultSeeds = 500

// profile is what one seed picks: the link each way, each host's
// configuration, how much each side sends, and who closes first.
type profile struct {
	seed        uint64
	ab, ba      LinkConfig // client->server, server->client
	ca, cb      tcp.Config // client, server
	up, down    int        // bytes client->server, server->client
	serverFirst bool       // the server closes first, after its reply
}

func newProfile(seed uint64) profile {
	r := rand.New(rand.NewPCG(seed, 0x7072_6f70))
	pick := func(xs ...float64) float64 { return xs[r.IntN(len(xs))] }
	link := func() LinkConfig {
		d := time.Duration(1+r.IntN(50)) * time.Millisecond
		l := LinkConfig{
			Delay:     d,
			Loss:      pick(0, 0, 0.01, 0.02, 0.05, 0.1, 0.2),
			Duplicate: pick(0, 0, 0.01, 0.05, 0.1),
			Reorder:   pick(0, 0, 0.02, 0.05, 0.2),
			Corrupt:   pick(0, 0, 0.01, 0.05, 0.1),
		}
		if r.IntN(3) == 0 {
			l.Jitter = time.Duration(r.IntN(int(d/2) + 1))
		}
		if l.Reorder > 0 {
			l.ReorderDelay = time.Duration(1+r.IntN(3)) * d
		}
		if r.IntN(4) == 0 {
			l.Rate = int64(pick(1e5, 1e6, 1.25e7)) // 0.8, 8, 100 Mbit/s
			if r.IntN(2) == 0 {
				l.QueueLimit = 8 + r.IntN(100)
			}
		}
		return l
	}
	p := profile{seed: seed, ab: link()}
	if r.IntN(3) == 0 {
		p.ba = p.ab
		p.ba.Delay = time.Duration(1+r.IntN(100)) * time.Millisecond // asymmetric delay
	} else {
		p.ba = link()
	}
	buffer := func() int {
		return []int{0, 0, 1024, 3000, 8 << 10, 64 << 10, 256 << 10, 1 << 20}[r.IntN(8)]
	}
	conf := func() tcp.Config {
		c := tcp.Config{
			SendBuffer:    buffer(),
			ReceiveBuffer: buffer(),
			NoWindowScale: r.IntN(2) == 0,
			NoTimestamps:  r.IntN(2) == 0,
			NoSACK:        r.IntN(2) == 0,
			NoDelay:       r.IntN(2) == 0,
			AckDelay:      []time.Duration{0, 0, -1, 10 * time.Millisecond, 200 * time.Millisecond}[r.IntN(5)],
			MSS:           uint16([]int{0, 0, 536, 1000, 1460, 64 + r.IntN(1400)}[r.IntN(6)]),
			// With 20% loss each way a handshake that fails 7 times in a
			// row is rare but not rare enough for thousands of seeds.
			SynRetries:    12,
			SynAckRetries: 12,
		}
		c.CongestionControl = []string{"cubic", "newreno", "bbr"}[r.IntN(3)]
		if r.IntN(4) == 0 {
			// Keep-alives on an idle connection; enough of them that
			// loss alone does not kill a live peer.
			c.KeepAlive = true
			c.KeepAliveIdle = time.Duration(200+r.IntN(2000)) * time.Millisecond
			c.KeepAliveInterval = time.Duration(100+r.IntN(500)) * time.Millisecond
			c.KeepAliveCount = 30
		}
		return c
	}
	p.ca, p.cb = conf(), conf()
	size := func(most int) int {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return 1 + r.IntN(100)
		}
		return r.IntN(most + 1)
	}
	p.up, p.down = size(200_000), size(60_000)
	// Keep a tiny MSS to small transfers, so runs stay quick.
	if p.ca.MSS != 0 && p.ca.MSS < 300 || p.cb.MSS != 0 && p.cb.MSS < 300 {
		p.up, p.down = p.up/10, p.down/10
	}
	p.serverFirst = r.IntN(4) == 0
	return p
}

func (p profile) String() string {
	link := func(l LinkConfig) string {
		s := fmt.Sprintf("delay=%v", l.Delay)
		if l.Jitter > 0 {
			s += fmt.Sprintf(" jitter=%v", l.Jitter)
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"loss", l.Loss}, {"dup", l.Duplicate}, {"reorder", l.Reorder}, {"corrupt", l.Corrupt}} {
			if f.v > 0 {
				s += fmt.Sprintf(" %s=%g%%", f.name, 100*f.v)
			}
		}
		if l.Rate > 0 {
			s += fmt.Sprintf(" rate=%dB/s queue=%d", l.Rate, l.QueueLimit)
		}
		return s
	}
	conf := func(c tcp.Config) string {
		s := fmt.Sprintf("snd=%d rcv=%d mss=%d ackdelay=%v %s", c.SendBuffer, c.ReceiveBuffer, c.MSS, c.AckDelay, c.CongestionControl)
		for _, f := range []struct {
			name string
			off  bool
		}{{"ws", c.NoWindowScale}, {"ts", c.NoTimestamps}, {"sack", c.NoSACK}, {"nagle", c.NoDelay}} {
			if f.off {
				s += " no-" + f.name
			}
		}
		if c.KeepAlive {
			s += fmt.Sprintf(" keepalive=%v/%v", c.KeepAliveIdle, c.KeepAliveInterval)
		}
		return s
	}
	return fmt.Sprintf("seed %d: up=%d down=%d serverFirst=%v\n  client->server %s\n  server->client %s\n  client %s\n  server %s",
		p.seed, p.up, p.down, p.serverFirst, link(p.ab), link(p.ba), conf(p.ca), conf(p.cb))
}

// outcome is what a run did, for the coverage report.
type outcome struct {
	impaired, ws, ts, sack bool
	probes, sacks          int
	packets                int
	virtual                time.Duration
}

// runProfile runs p's transfer, with sink (if not nil) seeing every
// record, and returns every broken property.
func runProfile(p profile, sink trace.Sink) ([]string, outcome) {
	w := New(p.seed)
	if sink != nil {
		w.SetTrace(sink)
	}
	k := newChecker(w)
	w.SetTap(k)
	a := w.NewHost("client", addrA, p.ca)
	b := w.NewHost("server", addrB, p.cb)
	w.Link(a, b, p.ab, p.ba)
	b.Listen(80)
	data := func(n int, salt uint64) []byte {
		r := rand.New(rand.NewPCG(p.seed, salt))
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		return d
	}
	up, down := data(p.up, 1), data(p.down, 2)
	var sc *Conn
	b.OnAccept(func(c *Conn) {
		if sc == nil {
			sc = c
		}
		c.OnState(func(c *Conn, from, to tcp.State) {
			// One step may take the connection from SYN-RECEIVED straight
			// to CLOSE-WAIT: the ACK, the data and the FIN in one segment.
			if !from.Synchronized() && to.Synchronized() {
				c.Write(down)
				if p.serverFirst {
					c.Close()
				}
			}
			if to == tcp.CloseWait && !p.serverFirst {
				c.Close()
			}
		})
	})
	c, err := a.Dial(b.AddrPort(80))
	if err != nil {
		return []string{err.Error()}, outcome{}
	}
	c.Write(up)
	if p.serverFirst {
		c.OnState(func(c *Conn, _, to tcp.State) {
			if to == tcp.CloseWait {
				c.Close()
			}
		})
	} else {
		c.Close()
	}
	// A run sends a few thousand packets; a million means the two sides
	// are stuck answering each other.
	const storm = 1_000_000
	w.RunUntil(48*time.Hour, func() bool { return w.Stats.Sent > storm })
	idle := !w.Pending()

	errs := k.errs
	if k.nerr > len(k.errs) {
		errs = append(errs, fmt.Sprintf("... and %d more", k.nerr-len(k.errs)))
	}
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	switch {
	case w.Stats.Sent > storm:
		fail("a packet storm: %d packets by %v, client %v", w.Stats.Sent, w.Elapsed(), c.State())
	case !idle:
		fail("still busy after 48 virtual hours: client %v", c.State())
	}
	if sc == nil {
		fail("the server never accepted the connection")
		return errs, outcome{}
	}
	if len(b.Conns()) != 1 {
		fail("the server had %d connections, want 1", len(b.Conns()))
	}
	if !bytes.Equal(sc.Received(), up) {
		fail("the server received %d bytes (%s), want the client's %d", len(sc.Received()), diff(sc.Received(), up), len(up))
	}
	if !bytes.Equal(c.Received(), down) {
		fail("the client received %d bytes (%s), want the server's %d", len(c.Received()), diff(c.Received(), down), len(down))
	}
	ends := func(name string, x, peer *Conn) {
		s := k.sides[x]
		path := ""
		if s != nil {
			path = stateNames(s.path)
		}
		switch {
		case x.State() != tcp.Closed:
			fail("%s ended in %v (path %s)", name, x.State(), path)
		case x.Err() == nil:
		case errors.Is(x.Err(), tcp.ErrConnectionReset) && strings.HasSuffix(path, "LAST-ACK CLOSED") &&
			peer.Err() == nil && strings.HasSuffix(stateNames(k.sides[peer].path), "TIME-WAIT CLOSED"):
			// Every retransmission of the LAST-ACK side's FIN, or every
			// ACK of it, was lost until the peer's TIME-WAIT ended; the
			// peer, CLOSED, answered the next FIN with RST. All data had
			// arrived: that is TCP working as specified.
		default:
			fail("%s ended with error %v (path %s)", name, x.Err(), path)
		}
	}
	ends("client", c, sc)
	ends("server", sc, c)
	st := w.Stats
	return errs, outcome{
		impaired: st.Lost+st.Duplicated+st.Reordered+st.Corrupted+st.QueueDrops > 0,
		ws:       k.wsOn, ts: k.tsOn, sack: k.sackOn,
		probes: k.probes, sacks: k.sacks, packets: st.Sent, virtual: w.Elapsed(),
	}
}

// diff says where two byte strings first differ.
func diff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	if len(got) < len(want) {
		return "a prefix"
	}
	if len(got) > len(want) {
		return "with extra bytes"
	}
	return "equal"
}

func seedCount(t *testing.T) int {
	if s := os.Getenv("TCPSTATE_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("TCPSTATE_SEEDS=%q: want a positive number", s)
		}
		return n
	}
	if *longProps {
		return 5000
	}
	if testing.Short() {
		return 50
	}
	return defaultSeeds
}

// TestProperties runs the property tests over many seeds, split among
// the available CPUs.
func TestProperties(t *testing.T) {
	if s := os.Getenv("TCPSTATE_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TCPSTATE_SEED=%q: %v", s, err)
		}
		testOneSeed(t, seed)
		return
	}
	n := seedCount(t)
	workers := max(runtime.GOMAXPROCS(0), 1)
	var (
		mu       sync.Mutex
		failed   int
		cov      = map[string]int{}
		packets  int
		start    = time.Now()
		seedNext = make(chan uint64)
	)
	go func() {
		for s := range uint64(n) {
			seedNext <- s
		}
		close(seedNext)
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seed := range seedNext {
				p := newProfile(seed)
				errs, out := runProfile(p, nil)
				mu.Lock()
				if len(errs) > 0 {
					failed++
					if failed <= 5 {
						t.Errorf("%v\n    %s\n  rerun traced: TCPSTATE_SEED=%d go test ./sim -run TestProperties -v",
							p, strings.Join(errs, "\n    "), seed)
					}
				}
				packets += out.packets
				for name, on := range map[string]bool{
					"impaired": out.impaired, "window scale": out.ws, "timestamps": out.ts,
					"SACK": out.sack, "SACK blocks sent": out.sacks > 0, "window probes": out.probes > 0,
					"loss >= 10%": p.ab.Loss >= 0.1 || p.ba.Loss >= 0.1, "server closes first": p.serverFirst,
					"small buffer": min(p.ca.ReceiveBuffer, p.cb.ReceiveBuffer, p.ca.SendBuffer, p.cb.SendBuffer) > 0 &&
						min(p.ca.ReceiveBuffer, p.cb.ReceiveBuffer, p.ca.SendBuffer, p.cb.SendBuffer) <= 3000,
					"newreno": p.ca.CongestionControl == "newreno", "no Nagle": p.ca.NoDelay,
					"keep-alive": p.ca.KeepAlive || p.cb.KeepAlive,
				} {
					if on {
						cov[name]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 5 {
		t.Errorf("... %d of %d seeds failed in all", failed, n)
	}
	t.Logf("%d seeds, %d packets, %v; runs with: %v", n, packets, time.Since(start).Round(time.Millisecond), cov)
	// The generator must cover the matrix; these features are the
	// network's or the configuration's, not the connection's, so they do
	// not depend on tcp.
	for _, name := range []string{"impaired", "loss >= 10%", "server closes first", "small buffer", "newreno", "no Nagle", "keep-alive"} {
		if cov[name] < n/20 {
			t.Errorf("only %d of %d runs had %s", cov[name], n, name)
		}
	}
}

// testOneSeed runs one seed traced, and on failure saves its records as
// JSON lines and its ladder diagram.
func testOneSeed(t *testing.T, seed uint64) {
	p := newProfile(seed)
	t.Logf("%v", p)
	log := &trace.Log{}
	errs, out := runProfile(p, log)
	t.Logf("%d packets, %v virtual, %d records", out.packets, out.virtual, len(log.Records))
	if len(errs) == 0 {
		return
	}
	dir := os.Getenv("TCPSTATE_TRACE_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	base := filepath.Join(dir, fmt.Sprintf("tcpstate-seed-%d", seed))
	if f, err := os.Create(base + ".jsonl"); err == nil {
		_ = trace.WriteJSON(f, log.Records)
		_ = f.Close()
	}
	if f, err := os.Create(base + ".ladder"); err == nil {
		_ = trace.Ladder(f, log.Records, trace.LadderOptions{Left: "client", Right: "server", Width: 140})
		_ = f.Close()
	}
	t.Errorf("%s\n  records: %s.jsonl, ladder: %s.ladder", strings.Join(errs, "\n"), base, base)
}
