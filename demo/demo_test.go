package demo

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/sim"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// path spells a state path as "CLOSED SYN-SENT ESTABLISHED".
func path(ss []tcp.State) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// segs spells what a host sent as "FLAGS seq ack[ +len]" lines.
func segs(recs []trace.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%s %d %d", r.Seg.Flags, r.Seg.Seq, r.Seg.Ack)
		if r.Seg.Len > 0 {
			out[i] += fmt.Sprintf(" +%d", r.Seg.Len)
		}
	}
	return out
}

// unscripted are the scenarios whose exact segments are left to
// TestFeatureScenarios and TestLossy: what they show matters, not every
// ACK.
var unscripted = map[string]bool{"lossy": true, "fast-retransmit": true, "zero-window": true}

type side struct {
	paths []string // one per connection, in order
	sent  []string // every segment sent, in order
}

var want = map[string][2]side{
	"handshake": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED"},
			sent: []string{"SYN,ACK 5000 1001"}},
	},
	"data": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "PSH,ACK 1001 5001 +100", "ACK 1101 5301"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED"},
			sent: []string{"SYN,ACK 5000 1001", "ACK 5001 1101", "PSH,ACK 5001 1101 +300"}},
	},
	"close": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "FIN,ACK 1001 5001", "ACK 1002 5002"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "ACK 5001 1002", "FIN,ACK 5001 1002"}},
	},
	"half-close": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "PSH,ACK 1001 5001 +20", "FIN,ACK 1021 5001",
				"ACK 1022 5301", "ACK 1022 5501", "ACK 1022 5502"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "ACK 5001 1021", "ACK 5001 1022",
				"PSH,ACK 5001 1022 +300", "PSH,ACK 5301 1022 +200", "FIN,ACK 5501 1022"}},
	},
	"fin-ack": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED FIN-WAIT-1 TIME-WAIT CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "FIN,ACK 1001 5001", "ACK 1002 5002"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "FIN,ACK 5001 1002"}},
	},
	"simultaneous-close": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED FIN-WAIT-1 CLOSING TIME-WAIT CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "FIN,ACK 1001 5001", "ACK 1002 5002"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED FIN-WAIT-1 CLOSING TIME-WAIT CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "FIN,ACK 5001 1001", "ACK 5002 1002"}},
	},
	"lost-final-ack": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "FIN,ACK 1001 5001", "ACK 1002 5002", "ACK 1002 5002"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "ACK 5001 1002", "FIN,ACK 5001 1002", "FIN,ACK 5001 1002"}},
	},
	"old-duplicate-syn": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED"},
			sent: []string{"SYN 1000 0", "RST 901 0", "ACK 1001 6001"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED LISTEN", "CLOSED LISTEN SYN-RECEIVED ESTABLISHED"},
			sent: []string{"SYN,ACK 5000 901", "SYN,ACK 6000 1001"}},
	},
	"simultaneous-open": {
		{paths: []string{"CLOSED SYN-SENT SYN-RECEIVED ESTABLISHED"},
			sent: []string{"SYN 1000 0", "SYN,ACK 1000 5001"}},
		{paths: []string{"CLOSED SYN-SENT SYN-RECEIVED ESTABLISHED"},
			sent: []string{"SYN 5000 0", "SYN,ACK 5000 1001"}},
	},
	"syn-recv-timeout": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "ACK 1001 5001", "ACK 1001 5001", "ACK 1001 5001",
				"ACK 1001 5001", "ACK 1001 5001", "PSH,ACK 1001 5001 +20"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "SYN,ACK 5000 1001", "SYN,ACK 5000 1001", "SYN,ACK 5000 1001",
				"SYN,ACK 5000 1001", "SYN,ACK 5000 1001", "RST 5001 0"}},
	},
	"retransmit": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "PSH,ACK 1001 5001 +100", "ACK 1101 6001",
				"FIN,ACK 1101 6001", "ACK 1102 6002"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "ACK 5001 1101", "PSH,ACK 5001 1101 +1000", "PSH,ACK 5001 1101 +1000",
				"ACK 6001 1102", "FIN,ACK 6001 1102"}},
	},
	"refused": {
		{paths: []string{"CLOSED SYN-SENT CLOSED"}, sent: []string{"SYN 1000 0"}},
		{paths: nil, sent: []string{"RST,ACK 0 1001"}},
	},
	"abort": {
		{paths: []string{"CLOSED SYN-SENT ESTABLISHED CLOSED"},
			sent: []string{"SYN 1000 0", "ACK 1001 5001", "PSH,ACK 1001 5001 +100", "RST 1101 0"}},
		{paths: []string{"CLOSED LISTEN SYN-RECEIVED ESTABLISHED CLOSED"},
			sent: []string{"SYN,ACK 5000 1001", "ACK 5001 1101"}},
	},
}

func hostNames(s *Scenario) [2]string {
	if s.Left == "" {
		return [2]string{"client", "server"}
	}
	return [2]string{s.Left, s.Right}
}

// TestScenarios checks each scripted scenario's exact state paths and
// segments on both sides.
func TestScenarios(t *testing.T) {
	for _, s := range Scenarios() {
		w, ok := want[s.Name]
		if !ok {
			if !unscripted[s.Name] {
				t.Errorf("%s: no expectations", s.Name)
			}
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			r := s.Run(Options{Seed: 1})
			for i, h := range hostNames(s) {
				var got []string
				for _, p := range r.StatePaths(h) {
					got = append(got, path(p))
				}
				if strings.Join(got, " | ") != strings.Join(w[i].paths, " | ") {
					t.Errorf("%s states:\n got %q\nwant %q", h, got, w[i].paths)
				}
				if g := segs(r.Sent(h)); strings.Join(g, " | ") != strings.Join(w[i].sent, " | ") {
					t.Errorf("%s sent:\n got %q\nwant %q", h, g, w[i].sent)
				}
			}
		})
	}
}

// TestScenarioDetails checks what the state paths do not show.
func TestScenarioDetails(t *testing.T) {
	run := func(name string) *Result {
		t.Helper()
		s, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return s.Run(Options{Seed: 1})
	}
	t.Run("data arrives", func(t *testing.T) {
		r := run("data")
		c := r.Stage.A.Conns()[0]
		if got := len(r.Stage.Accepted.Received()); got != 100 {
			t.Errorf("server received %d bytes, want 100", got)
		}
		if got := len(c.Received()); got != 300 {
			t.Errorf("client received %d bytes, want 300", got)
		}
	})
	t.Run("half-close data after FIN", func(t *testing.T) {
		r := run("half-close")
		c := r.Stage.A.Conns()[0]
		if got := string(c.Received()); len(got) != 500 || !strings.HasPrefix(got, "HTTP/1.0 200 OK") {
			t.Errorf("client received %q", got)
		}
		if !c.EOF() {
			t.Error("client did not see the server's FIN")
		}
	})
	t.Run("2MSL", func(t *testing.T) {
		r := run("close")
		var set, fired *trace.Record
		for i := range r.Records {
			rec := &r.Records[i]
			if rec.Host == "client" && rec.Timer == "2MSL" {
				switch rec.Kind {
				case trace.KindTimerSet:
					set = rec
				case trace.KindTimerFired:
					fired = rec
				}
			}
		}
		if set == nil || fired == nil {
			t.Fatal("no 2MSL timer set and fired on the client")
		}
		if d := fired.T - set.T; d != 2*tcp.DefaultMSL {
			t.Errorf("TIME-WAIT lasted %v, want %v", d, 2*tcp.DefaultMSL)
		}
	})
	t.Run("lost-final-ack restarts 2MSL", func(t *testing.T) {
		r := run("lost-final-ack")
		n := 0
		for _, rec := range r.Records {
			if rec.Host == "client" && rec.Kind == trace.KindTimerSet && rec.Timer == "2MSL" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("client armed 2MSL %d times, want 2 (once, then restarted)", n)
		}
		srv := r.Sent("server")
		if last := srv[len(srv)-1]; !last.Retransmit {
			t.Errorf("server's last FIN is not marked a retransmission: %+v", last)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for name, want := range map[string]error{
			"refused":          tcp.ErrConnectionRefused,
			"syn-recv-timeout": tcp.ErrConnectionReset,
		} {
			r := run(name)
			if err := r.Stage.A.Conns()[0].Err(); !errors.Is(err, want) {
				t.Errorf("%s: client error %v, want %v", name, err, want)
			}
		}
		r := run("abort")
		if err := r.Stage.Accepted.Err(); !errors.Is(err, tcp.ErrConnectionReset) {
			t.Errorf("abort: server error %v, want connection reset", err)
		}
		r = run("syn-recv-timeout")
		if err := r.Stage.B.Conns()[0].Err(); !errors.Is(err, tcp.ErrTimeout) {
			t.Errorf("syn-recv-timeout: server error %v, want timeout", err)
		}
	})
	t.Run("nothing left behind", func(t *testing.T) {
		for _, s := range Scenarios() {
			r := s.Run(Options{Seed: 1})
			if r.World.Pending() {
				t.Errorf("%s: still busy after %v", s.Name, Limit)
			}
		}
	})
}

// TestLossy runs the lossy scenario under many seeds: the data always
// arrives intact and both sides always end CLOSED.
func TestLossy(t *testing.T) {
	s, err := Lookup("lossy")
	if err != nil {
		t.Fatal(err)
	}
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	impaired := 0
	for seed := range uint64(seeds) {
		r := s.Run(Options{Seed: seed})
		c, sc := r.Stage.A.Conns()[0], r.Stage.Accepted
		if sc == nil {
			t.Fatalf("seed %d: server never accepted", seed)
		}
		if !bytes.Equal(sc.Received(), payload(1500, "request ")) {
			t.Errorf("seed %d: server received %d bytes, not the request", seed, len(sc.Received()))
		}
		if !bytes.Equal(c.Received(), payload(1000, "reply ")) {
			t.Errorf("seed %d: client received %d bytes, not the reply", seed, len(c.Received()))
		}
		if c.State() != tcp.Closed || sc.State() != tcp.Closed {
			t.Errorf("seed %d: ended %v / %v, want CLOSED / CLOSED", seed, c.State(), sc.State())
		}
		st := r.World.Stats
		if st.Lost+st.Corrupted+st.Duplicated+st.Reordered > 0 {
			impaired++
		}
		if st.Corrupted > 0 && st.BadPackets == 0 {
			t.Errorf("seed %d: %d packets corrupted, none caught", seed, st.Corrupted)
		}
	}
	if impaired < seeds/2 {
		t.Errorf("only %d of %d seeds met any impairment", impaired, seeds)
	}
}

// TestDeterministic runs every scenario twice with the same seed and
// compares the JSON bytes.
func TestDeterministic(t *testing.T) {
	for _, s := range Scenarios() {
		var a, b bytes.Buffer
		s.Run(Options{Seed: 7, Sink: trace.NewJSONWriter(&a)})
		s.Run(Options{Seed: 7, Sink: trace.NewJSONWriter(&b)})
		if a.Len() == 0 || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two runs with seed 7 differ (or are empty)", s.Name)
		}
	}
	s, _ := Lookup("lossy")
	var a, b bytes.Buffer
	s.Run(Options{Seed: 1, Sink: trace.NewJSONWriter(&a)})
	s.Run(Options{Seed: 2, Sink: trace.NewJSONWriter(&b)})
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("lossy: seeds 1 and 2 gave the same run")
	}
}

// TestLadder checks the ladder diagrams' shape: within 100 columns,
// every scenario's states appear, lost packets end in X.
func TestLadder(t *testing.T) {
	for _, s := range Scenarios() {
		r := s.Run(Options{Seed: 1})
		var b bytes.Buffer
		if err := r.WriteText(&b, 100); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for i, line := range strings.Split(out, "\n") {
			if len(line) > 100 {
				t.Errorf("%s: line %d is %d columns: %q", s.Name, i+1, len(line), line)
			}
		}
		for _, h := range hostNames(s) {
			for _, p := range r.StatePaths(h) {
				for _, st := range p {
					if !strings.Contains(out, st.String()) {
						t.Errorf("%s: ladder never shows %v", s.Name, st)
					}
				}
			}
		}
	}
	r := mustRun(t, "lost-final-ack")
	var b bytes.Buffer
	_ = r.Ladder(&b, 100)
	if !strings.Contains(b.String(), "ACK seq=1002 ack=5002 win=65535 --X") {
		t.Errorf("lost-final-ack: the lost ACK does not end in X:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "[2MSL timer expires]") {
		t.Errorf("lost-final-ack: no 2MSL expiry line:\n%s", b.String())
	}
}

func mustRun(t *testing.T, name string) *Result {
	t.Helper()
	s, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run(Options{Seed: 1})
}

func TestLookup(t *testing.T) {
	if _, err := Lookup("no-such"); err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("Lookup(no-such) = %v, want an error listing the names", err)
	}
	seen := map[string]bool{}
	for _, s := range Scenarios() {
		if seen[s.Name] || s.Title == "" || s.About == "" || s.script == nil {
			t.Errorf("scenario %q: duplicate or incomplete", s.Name)
		}
		seen[s.Name] = true
	}
}

// TestFeatureScenarios checks what the scenarios of reliable transfer
// are there to show. Each check names the tcp feature it depends on, so
// a failure says which one is missing.
func TestFeatureScenarios(t *testing.T) {
	t.Run("retransmit", func(t *testing.T) {
		r := mustRun(t, "retransmit")
		lost := filtered(r, "server")
		if len(lost) != 1 || lost[0].Seg.Len != 1000 {
			t.Fatalf("want the server's 1000-byte reply lost, got %d filtered", len(lost))
		}
		orig := lost[0]
		var fired *trace.Record
		var rtx *trace.Record
		for i := range r.Records {
			rec := &r.Records[i]
			if rec.Host != "server" || rec.T < orig.T {
				continue
			}
			if rec.Kind == trace.KindTimerFired && rec.Timer == tcp.TimerRetransmit.String() && fired == nil {
				fired = rec
			}
			if rec.Kind == trace.KindSegmentOut && rec.Retransmit && rec.Seg.Seq == orig.Seg.Seq && rtx == nil {
				rtx = rec
			}
		}
		switch {
		case rtx == nil:
			t.Fatal("the lost reply was never retransmitted")
		case fired == nil || fired.T != rtx.T:
			t.Errorf("the retransmission at %v does not follow a retransmission timeout", rtx.T)
		case rtx.Reason != tcp.ReasonRetransmit.String() || rtx.Seg.Len != orig.Seg.Len:
			t.Errorf("retransmission %q of %d bytes, want %q of %d", rtx.Reason, rtx.Seg.Len, tcp.ReasonRetransmit, orig.Seg.Len)
		}
		if rtx != nil {
			// The handshake measured a 20 ms round trip, so the RTO is the
			// 200 ms floor (RFC 6298 §2.4, Linux's minimum), not the
			// initial 1 s of §2.1.
			gap := rtx.T - orig.T
			if gap < tcp.DefaultMinRTO || gap >= tcp.DefaultInitialRTO {
				t.Errorf("retransmitted %v after the original, want an RTO from the measured RTT in [%v, %v) "+
					"(RFC 6298 RTT estimation)", gap, tcp.DefaultMinRTO, tcp.DefaultInitialRTO)
			}
		}
		if got := len(r.Stage.A.Conns()[0].Received()); got != 1000 {
			t.Errorf("client received %d bytes, want 1000", got)
		}
		endsClean(t, r)
	})

	t.Run("fast-retransmit", func(t *testing.T) {
		r := mustRun(t, "fast-retransmit")
		lost := filtered(r, "client")
		if len(lost) != 1 || lost[0].Seg.Seq != ISSA+501 || lost[0].Seg.Len != 500 {
			t.Fatalf("want the client's second 500-byte segment (seq %d) lost, got %+v", ISSA+501, lost)
		}
		hole := lost[0].Seg.Seq
		sack := sackNegotiated(r)
		if !sack {
			t.Error("SACK was not negotiated though both sides offer it (RFC 2018 SACK-permitted)")
		}
		var (
			rtx      *trace.Record
			dups     int
			rtoFired bool
			sackDups int
		)
		for i := range r.Records {
			rec := &r.Records[i]
			if rec.Host != "client" || rec.T < lost[0].T {
				continue
			}
			if rec.Kind == trace.KindTimerFired && rec.Timer == tcp.TimerRetransmit.String() {
				rtoFired = true
			}
			if rec.Kind == trace.KindSegmentIn && rec.Seg.Len == 0 && rec.Seg.Ack == hole {
				dups++
				if strings.Contains(rec.Opts, "sack=") {
					sackDups++
				}
			}
			if rec.Kind == trace.KindSegmentOut && rec.Retransmit && rec.Seg.Seq == hole {
				rtx = rec
				break
			}
		}
		switch {
		case rtx == nil:
			t.Fatal("the lost segment was never retransmitted")
		case rtoFired || rtx.Reason == tcp.ReasonRetransmit.String():
			t.Errorf("the lost segment was resent by the retransmission timer, not by fast retransmit " +
				"(RFC 5681 §3.2 / RFC 6675)")
		case rtx.Reason != tcp.ReasonFastRetransmit.String():
			t.Errorf("the lost segment was resent for %q, want %q", rtx.Reason, tcp.ReasonFastRetransmit)
		}
		// The first ack=hole acknowledges the first segment; the rest are
		// duplicates. Three trigger fast retransmit (RFC 5681); with SACK,
		// more than two segments' worth SACKed beyond the hole may trigger
		// it after two (RFC 6675 IsLost).
		least := 3
		if sack {
			least = 2
		}
		if dups-1 < least {
			t.Errorf("retransmitted after %d duplicate ACKs, want at least %d", dups-1, least)
		}
		if sack && sackDups < dups-1 {
			t.Errorf("only %d of %d duplicate ACKs carry SACK blocks (RFC 2018)", sackDups, dups)
		}
		// The server kept the four segments after the hole: the ACK of the
		// retransmission covers all six (out-of-order reassembly).
		if rtx != nil {
			for _, rec := range r.Records {
				if rec.Host == "server" && rec.Kind == trace.KindSegmentOut && rec.T > rtx.T && hole.LessThan(rec.Seg.Ack) {
					if rec.Seg.Ack != ISSA+1+3000 {
						t.Errorf("the retransmission is acknowledged with ack=%d, want %d: the server "+
							"did not keep the out-of-order segments (reassembly)", rec.Seg.Ack, ISSA+1+3000)
					}
					break
				}
			}
		}
		if !bytes.Equal(r.Stage.Accepted.Received(), payload(3000, "0123456789abcdef")) {
			t.Errorf("server received %d bytes, not the 3000 sent", len(r.Stage.Accepted.Received()))
		}
		endsClean(t, r)
	})

	t.Run("zero-window", func(t *testing.T) {
		r := mustRun(t, "zero-window")
		const resume = 2500 * time.Millisecond
		var (
			zeroAt   time.Duration = -1
			probes   []time.Duration
			rtxProbe int
			update   *trace.Record
			lastWin  = -1
			lastTmr  string
			beyond   int
			edge     seqnum.Value
			answered int
		)
		for i := range r.Records {
			rec := &r.Records[i]
			switch {
			case rec.Host == "server" && rec.Kind == trace.KindSegmentOut && rec.Seg.Flags&header.ACK != 0:
				if rec.Seg.Window == 0 && zeroAt < 0 {
					zeroAt = rec.T
				}
				if rec.Seg.Window == 0 && len(probes) > 0 && rec.T > probes[len(probes)-1] {
					answered++
				}
				if rec.T >= resume && rec.Seg.Window > 0 && update == nil {
					update = rec
				}
			case rec.Host == "client" && rec.Kind == trace.KindSegmentIn && rec.Seg.Flags&header.ACK != 0:
				lastWin = int(rec.Seg.Window)
				if e := rec.Seg.Ack.Add(seqnum.Size(rec.Seg.Window)); edge.LessThan(e) {
					edge = e
				}
			case rec.Host == "client" && rec.Kind == trace.KindTimerFired:
				lastTmr = rec.Timer
			case rec.Host == "client" && rec.Kind == trace.KindSegmentOut:
				if lastWin == 0 && lastTmr != "" && rec.T < resume {
					probes = append(probes, rec.T)
					if lastTmr != tcp.TimerPersist.String() {
						rtxProbe++
					}
				}
				if end := rec.Seg.Seq.Add(seqnum.Size(rec.Seg.Len)); rec.Seg.Len > 1 && edge.LessThan(end) {
					beyond++
				}
				lastTmr = ""
			}
		}
		if zeroAt < 0 {
			t.Fatal("the server never advertised a zero window")
		}
		if len(probes) < 2 {
			t.Fatalf("%d zero-window probes while the reader was stopped, want several (persist timer, RFC 9293 §3.8.6.1)", len(probes))
		}
		if rtxProbe > 0 {
			t.Errorf("%d of %d probes came from the retransmission timer, not the persist timer (RFC 9293 §3.8.6.1)",
				rtxProbe, len(probes))
		}
		for i := 2; i < len(probes); i++ {
			if probes[i]-probes[i-1] <= probes[i-1]-probes[i-2] {
				t.Errorf("probes at %v: the persist timer does not back off", probes)
				break
			}
		}
		if answered < len(probes) {
			t.Errorf("%d of %d probes were answered with win=0", answered, len(probes))
		}
		if beyond > 0 {
			t.Errorf("the client sent %d segments beyond the server's window", beyond)
		}
		switch {
		case update == nil:
			t.Error("the window never reopened after the reader resumed")
		case update.Reason != tcp.ReasonWindowUpdate.String():
			t.Errorf("the window reopened with %q, want a window update", update.Reason)
		}
		if !bytes.Equal(r.Stage.Accepted.Received(), payload(3000, "0123456789abcdef")) {
			t.Errorf("server received %d bytes, not the 3000 sent", len(r.Stage.Accepted.Received()))
		}
		endsClean(t, r)
	})
}

// filtered returns the packets from host that a scripted filter dropped.
func filtered(r *Result, host string) []trace.Record {
	var out []trace.Record
	for _, rec := range r.Records {
		if rec.Host == host && rec.Kind == trace.KindFiltered {
			out = append(out, rec)
		}
	}
	return out
}

// sackNegotiated reports whether both SYNs carried SACK-permitted.
func sackNegotiated(r *Result) bool {
	n := 0
	for _, rec := range r.Records {
		if rec.Kind == trace.KindSegmentOut && rec.Seg.Flags&header.SYN != 0 && strings.Contains(rec.Opts, "sackOK") {
			n++
		}
	}
	return n >= 2
}

// endsClean checks both sides of the scenario's connection ended CLOSED
// without an error.
func endsClean(t *testing.T, r *Result) {
	t.Helper()
	for _, c := range []*sim.Conn{r.Stage.A.Conns()[0], r.Stage.Accepted} {
		if c.State() != tcp.Closed || c.Err() != nil {
			t.Errorf("%s ended %v, %v; want CLOSED without error", c.Host().Name(), c.State(), c.Err())
		}
	}
}
