// Package demo holds tcpstate's teaching scenarios: the article's walk
// through the TCP state diagram (the three-way handshake, the
// four-segment close, half close, simultaneous close and open, TIME-WAIT
// and its 2MSL wait, the old duplicate SYN, a server stuck in
// SYN-RECEIVED), and then reliable transfer at work (a retransmission
// timeout, a fast retransmit on duplicate ACKs and SACK, a zero window
// probed and reopened), each played out between two hosts in the
// deterministic simulator of package sim.
//
// The article's scenarios use Classic settings, TCP as RFC 9293 alone
// describes it, so the ladders look as the article draws them; the
// others say which modern behaviour they switch on.
//
// A Scenario is data (a name, a title, a paragraph tying it to the
// article and to RFC 9293) plus a script. Run plays it and returns the
// records of everything that happened, which the CLI draws as a ladder
// diagram or prints as JSON lines, and which the tests check state by
// state.
package demo

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/sim"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// Scenario is one demonstration.
type Scenario struct {
	// Name is the short name the CLI takes: "handshake", "fin-ack", ...
	Name string
	// Title is a one-line summary.
	Title string
	// About is a paragraph on what the scenario shows and how it ties to
	// the article and RFC 9293.
	About string
	// Left and Right name the hosts drawn in the ladder's columns.
	Left, Right string

	// config is both hosts' connection settings; nil means Classic.
	config func() tcp.Config
	script func(s *Stage)
}

// Classic is the configuration of the article's scenarios: TCP as RFC
// 9293 alone describes it, so the ladders look as the article draws them.
// Every segment is acknowledged at once (no delayed ACKs), and SYNs offer
// only the MSS: no window scaling, timestamps or SACK.
func Classic() tcp.Config {
	return tcp.Config{AckDelay: -1, NoWindowScale: true, NoTimestamps: true, NoSACK: true}
}

// Config returns the settings both hosts of the scenario use.
func (s *Scenario) Config() tcp.Config {
	if s.config != nil {
		return s.config()
	}
	return Classic()
}

// Stage is what a scenario's script works with: the World, the two
// hosts and the link between them.
type Stage struct {
	W *sim.World
	// A and B are the left and right hosts: client and server in most
	// scenarios.
	A, B *sim.Host
	Link *sim.Link
	// Accepted is the latest connection B's listener created.
	Accepted *sim.Conn

	acceptHooks []func(*sim.Conn)
}

// Options configure a run.
type Options struct {
	// Seed seeds the World's randomness. Only scenarios with random
	// impairments ("lossy") depend on it.
	Seed uint64
	// Sink, if set, also receives every record as it happens.
	Sink trace.Sink
}

// Result is a finished run.
type Result struct {
	Scenario *Scenario
	// Records holds every record of the run, in order, each with Run set
	// to the scenario's name.
	Records []trace.Record
	// World is the simulation after the run, for inspection.
	World *sim.World
	// Stage is the scenario's stage after the run.
	Stage *Stage
}

// The addresses and numbers every scenario uses, chosen to be easy to
// read in a diagram.
var (
	AddrA = netip.MustParseAddr("10.0.0.1")
	AddrB = netip.MustParseAddr("10.0.0.2")
)

const (
	// ServerPort is the port B listens on.
	ServerPort = 80
	// ISSA and ISSB are the initial sequence numbers of A's and B's first
	// connections; later ones add 1000.
	ISSA = 1000
	ISSB = 5000
	// OneWay is the link's one-way delay.
	OneWay = 10 * time.Millisecond
	// Limit is how long a scenario may run in virtual time.
	Limit = 30 * time.Minute
)

// Scenarios returns every scenario, in teaching order.
func Scenarios() []*Scenario { return scenarios }

// Names returns every scenario's name, in order.
func Names() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.Name
	}
	return names
}

// Lookup finds a scenario by name.
func Lookup(name string) (*Scenario, error) {
	for _, s := range scenarios {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown scenario %q (have: %s)", name, strings.Join(Names(), ", "))
}

// Run plays the scenario and returns its records.
func (s *Scenario) Run(opt Options) *Result {
	w := sim.New(opt.Seed)
	log := &trace.Log{}
	w.SetTrace(trace.SinkFunc(func(r *trace.Record) {
		r.Run = s.Name
		log.Emit(r)
		if opt.Sink != nil {
			opt.Sink.Emit(r)
		}
	}))
	st := &Stage{W: w}
	left, right := s.Left, s.Right
	if left == "" {
		left, right = "client", "server"
	}
	cfg := s.Config()
	st.A = w.NewHost(left, AddrA, cfg)
	st.B = w.NewHost(right, AddrB, cfg)
	st.A.SetISS(ISSA, ISSA+1000)
	st.B.SetISS(ISSB, ISSB+1000)
	if s.Left == "" {
		st.B.Listen(ServerPort)
	}
	link := sim.LinkConfig{Delay: OneWay}
	st.Link = w.Link(st.A, st.B, link, link)
	st.B.OnAccept(func(c *sim.Conn) {
		st.Accepted = c
		for _, f := range st.acceptHooks {
			f(c)
		}
	})
	s.script(st)
	w.RunUntilIdle(Limit)
	return &Result{Scenario: s, Records: log.Records, World: w, Stage: st}
}

// At schedules f at virtual time t from the start.
func (st *Stage) At(t time.Duration, f func()) { st.W.At(t, f) }

// Note schedules a line of narration at virtual time t.
func (st *Stage) Note(t time.Duration, text string) { st.W.At(t, func() { st.W.Note(text) }) }

// OnAccept adds a function to run for each connection B's listener
// creates.
func (st *Stage) OnAccept(f func(*sim.Conn)) { st.acceptHooks = append(st.acceptHooks, f) }

// Dial has A connect to B's ServerPort at time t and stores the
// connection in *c.
func (st *Stage) Dial(t time.Duration, c **sim.Conn) {
	st.At(t, func() {
		conn, err := st.A.Dial(st.B.AddrPort(ServerPort))
		if err == nil {
			*c = conn
		}
	})
}

// CloseOn has each connection B accepts close, after delay, once it
// reaches state s (CLOSE-WAIT: the server closes when the client has).
func (st *Stage) CloseOn(s tcp.State, delay time.Duration) {
	st.OnAccept(func(c *sim.Conn) {
		c.OnState(func(c *sim.Conn, _, to tcp.State) {
			if to == s {
				st.W.After(delay, c.Close)
			}
		})
	})
}

// Ladder draws the run as a ladder diagram width columns wide.
func (r *Result) Ladder(w io.Writer, width int) error {
	left, right := r.Scenario.Left, r.Scenario.Right
	if left == "" {
		left, right = "client", "server"
	}
	return trace.Ladder(w, r.Records, trace.LadderOptions{Left: left, Right: right, Width: width})
}

// StatePaths returns, for each connection host had in the run (in order
// of its first state change), the states it went through: the first
// change's From, then every To. Two connections with the same tuple, one
// after the other, are two paths.
func (r *Result) StatePaths(host string) [][]tcp.State {
	var out [][]tcp.State
	cur := map[tcp.Tuple]int{} // the latest path of each tuple
	for i := range r.Records {
		rec := &r.Records[i]
		if rec.Host != host || rec.Kind != trace.KindState {
			continue
		}
		// A connection starts from CLOSED and never returns from it, so
		// a change from CLOSED on a known tuple is a new incarnation.
		i, ok := cur[rec.Conn]
		if !ok || rec.From == tcp.Closed {
			i = len(out)
			cur[rec.Conn] = i
			out = append(out, []tcp.State{rec.From})
		}
		out[i] = append(out[i], rec.To)
	}
	return out
}

// Sent returns the segment-out records of host, in order: what it sent.
func (r *Result) Sent(host string) []trace.Record {
	var out []trace.Record
	for _, rec := range r.Records {
		if rec.Host == host && rec.Kind == trace.KindSegmentOut {
			out = append(out, rec)
		}
	}
	return out
}

// WriteText writes the scenario's title, its paragraph and its ladder
// diagram, width columns wide.
func (r *Result) WriteText(w io.Writer, width int) error {
	s := r.Scenario
	head := fmt.Sprintf("== %s: %s ", s.Name, s.Title)
	if n := width - len(head); n > 0 {
		head += strings.Repeat("=", n)
	}
	if _, err := fmt.Fprintf(w, "%s\n\n%s\n", head, wrap(s.About, width)); err != nil {
		return err
	}
	return r.Ladder(w, width)
}

// wrap breaks s into lines no wider than width.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(s) {
		if n > 0 && n+1+len(word) > width {
			b.WriteByte('\n')
			n = 0
		}
		if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	b.WriteByte('\n')
	return b.String()
}
