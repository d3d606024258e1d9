// Package admin serves a running stack's insides over HTTP, for operators
// and their tools: Prometheus metrics, the connection table, the counts of
// state transitions, the counters, and a live stream of events.
//
//	GET /metrics       Prometheus exposition format
//	GET /conns         the connection table as JSON (?state=NAME filters)
//	GET /stats         the counters as JSON
//	GET /transitions   how often each state change happened, as JSON
//	GET /events        events as JSON lines while the client listens
//	                   (?kinds=state,segment-in,... or all; ?conn=L->R;
//	                   ?format=sse for server-sent events)
//
// The JSON shapes are the exported types of this package, so a client
// decodes them with the same definitions (tcpstate conns and tcpstate
// stats do).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tcpstate/tcpstate/stack"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

// Options configures a Server.
type Options struct {
	// Host names the stack in event records. Default "tcpstate".
	Host string
	// Start is when the stack started; event times count from it.
	// Default: when the Server is made.
	Start time.Time
	// EventBuffer is how many events a slow /events client may fall
	// behind by before events are dropped (and counted). Default 4096.
	EventBuffer int
}

// Server is the admin endpoint of one stack. It is an http.Handler.
type Server struct {
	s    *stack.Stack
	opts Options
	mux  *http.ServeMux
	reg  *prometheus.Registry

	eventsDropped atomic.Uint64
	eventClients  atomic.Int64
}

// New returns the admin endpoint of s.
func New(s *stack.Stack, opts Options) *Server {
	if opts.Host == "" {
		opts.Host = "tcpstate"
	}
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 4096
	}
	a := &Server{s: s, opts: opts, mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	a.reg.MustRegister(&collector{a: a})
	a.reg.MustRegister(collectors.NewGoCollector())
	a.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	a.mux.HandleFunc("GET /conns", a.serveConns)
	a.mux.HandleFunc("GET /stats", a.serveStats)
	a.mux.HandleFunc("GET /transitions", a.serveTransitions)
	a.mux.HandleFunc("GET /events", a.serveEvents)
	a.mux.HandleFunc("GET /{$}", a.serveIndex)
	return a
}

// ServeHTTP implements http.Handler.
func (a *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// ListenAndServe serves the endpoint on addr until ctx ends. It returns
// once the listener is up, with the address it listens on (useful with
// port 0); serving goes on in the background, and errc receives its end.
func (a *Server) ListenAndServe(ctx context.Context, addr string) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(shut)
		srv.Close() // event streams do not end on their own
	}()
	return ln.Addr(), errc, nil
}

func (a *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "tcpstate admin endpoint\n\n"+
		"/metrics      Prometheus metrics\n"+
		"/conns        connection table (JSON; ?state=NAME)\n"+
		"/stats        counters (JSON)\n"+
		"/transitions  state transitions taken (JSON)\n"+
		"/events       live events (JSON lines; ?kinds=all|state,...; ?conn=L->R; ?format=sse)\n")
}

// Conn is one row of the connection table, as /conns serves it. Times are
// in seconds.
type Conn struct {
	State       string      `json:"state"`
	Local       string      `json:"local"`
	Remote      string      `json:"remote,omitempty"`
	RecvQ       int         `json:"recv_q"`
	SendQ       int         `json:"send_q"`
	Timer       string      `json:"timer,omitempty"`
	TimerLeft   float64     `json:"timer_left,omitempty"`
	Retransmits int         `json:"retransmits,omitempty"`
	Timers      []TimerLeft `json:"timers,omitempty"`
	Passive     bool        `json:"passive,omitempty"`
	Orphan      bool        `json:"orphan,omitempty"`
	SndWnd      uint32      `json:"snd_wnd,omitempty"`
	RcvWnd      uint32      `json:"rcv_wnd,omitempty"`
	MSS         int         `json:"mss,omitempty"`
	Cwnd        int         `json:"cwnd,omitempty"`
	RTO         float64     `json:"rto,omitempty"`
	SRTT        float64     `json:"srtt,omitempty"`
	PacingRate  float64     `json:"pacing_rate,omitempty"` // bytes per second (BBR)
	Bandwidth   float64     `json:"bandwidth,omitempty"`   // BBR's bottleneck estimate, bytes per second
	SegsIn      uint64      `json:"segs_in"`
	SegsOut     uint64      `json:"segs_out"`
	RetransSegs uint64      `json:"retrans_segs"`
	Error       string      `json:"error,omitempty"`
}

// TimerLeft is a running timer and the seconds until it fires.
type TimerLeft struct {
	Timer string  `json:"timer"`
	Left  float64 `json:"left"`
}

// Table is the connection table: the rows, and a count per state over all
// rows (before any filter).
type Table struct {
	Time   time.Time      `json:"time"`
	Conns  []Conn         `json:"conns"`
	Counts map[string]int `json:"counts"`
}

func (a *Server) serveConns(w http.ResponseWriter, r *http.Request) {
	var want []tcp.State
	if name := r.URL.Query().Get("state"); name != "" {
		var err error
		if want, err = tcp.StatesNamed(name); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	now := time.Now()
	t := Table{Time: now, Conns: []Conn{}, Counts: map[string]int{}}
	for _, ci := range a.s.Table(now) {
		t.Counts[ci.State.String()]++
		if want != nil && !slices.Contains(want, ci.State) {
			continue
		}
		t.Conns = append(t.Conns, connRow(&ci))
	}
	writeJSON(w, t)
}

func connRow(ci *stack.ConnInfo) Conn {
	c := Conn{
		State: ci.State.String(), Local: ci.Local.String(),
		RecvQ: ci.RecvQ, SendQ: ci.SendQ, Retransmits: ci.Retransmits,
		Passive: ci.Passive, Orphan: ci.Orphan,
		SndWnd: ci.SndWnd, RcvWnd: ci.RcvWnd, MSS: ci.MSS, Cwnd: ci.Cwnd,
		RTO: ci.RTO.Seconds(), SRTT: ci.SRTT.Seconds(),
		PacingRate: ci.PacingRate, Bandwidth: ci.Bandwidth,
		SegsIn: ci.SegsIn, SegsOut: ci.SegsOut, RetransSegs: ci.RetransSegs,
	}
	if ci.Remote.IsValid() {
		c.Remote = ci.Remote.String()
	}
	if ci.HasTimer {
		c.Timer, c.TimerLeft = ci.Timer.String(), ci.TimerLeft.Seconds()
	}
	for _, ti := range ci.Timers {
		c.Timers = append(c.Timers, TimerLeft{Timer: ti.Timer.String(), Left: ti.Left.Seconds()})
	}
	if ci.Err != nil {
		c.Error = ci.Err.Error()
	}
	return c
}

// Stats is the stack's counters, as /stats serves them. The first group
// has RFC 4022's TCP-MIB names.
type Stats struct {
	ActiveOpens  uint64 `json:"ActiveOpens"`
	PassiveOpens uint64 `json:"PassiveOpens"`
	AttemptFails uint64 `json:"AttemptFails"`
	EstabResets  uint64 `json:"EstabResets"`
	CurrEstab    uint64 `json:"CurrEstab"`
	InSegs       uint64 `json:"InSegs"`
	OutSegs      uint64 `json:"OutSegs"`
	RetransSegs  uint64 `json:"RetransSegs"`
	InErrs       uint64 `json:"InErrs"`
	OutRsts      uint64 `json:"OutRsts"`

	InPackets         uint64 `json:"InPackets"`
	OutPackets        uint64 `json:"OutPackets"`
	DupAcks           uint64 `json:"DupAcks"`
	SynCookiesSent    uint64 `json:"SynCookiesSent"`
	SynCookiesValid   uint64 `json:"SynCookiesValidated"`
	SynCookiesInvalid uint64 `json:"SynCookiesFailed"`
	ICMPEchoReplies   uint64 `json:"ICMPEchoReplies"`
	ICMPErrors        uint64 `json:"ICMPErrors"`
	WriteErrors       uint64 `json:"WriteErrors"`
	EventsDropped     uint64 `json:"EventsDropped"`

	// Drops counts discarded packets and segments by reason (see
	// DropReasons).
	Drops map[string]uint64 `json:"Drops"`
	// States counts the connections in each state, every state listed.
	States map[string]int `json:"States"`
}

// The drop reasons of the stack itself, as Stats.Drops and the
// tcpstate_drops_total metric name them.
const (
	DropBadChecksum    = "bad_checksum"
	DropMalformed      = "malformed_header"
	DropNotOurs        = "not_our_address"
	DropNoListener     = "no_listener"
	DropListenOverflow = "listen_overflow"
)

// reasonLabels names a connection's drop reasons as labels.
var reasonLabels = map[tcp.Reason]string{
	tcp.ReasonOutOfWindow:   "out_of_window",
	tcp.ReasonPAWS:          "paws",
	tcp.ReasonAckTooNew:     "ack_of_unsent_data",
	tcp.ReasonRstIgnored:    "rst_not_acceptable",
	tcp.ReasonChallengeAck:  "challenge_ack",
	tcp.ReasonTimeWaitReack: "fin_in_time_wait",
	tcp.ReasonNoAck:         "no_ack_bit",
	tcp.ReasonBadState:      "unexpected_in_state",
	tcp.ReasonResetBadAck:   "bad_ack",
	tcp.ReasonDupSyn:        "duplicate_syn",
	tcp.ReasonTextAfterFin:  "data_after_fin",
	tcp.ReasonOutOfOrder:    "out_of_order_no_room",
	tcp.ReasonResetNoConn:   "no_connection",
}

// DropReasonLabel names a connection's drop reason as the metrics do:
// "out_of_window", "paws", ... and, for a reason without a short name,
// its words with underscores.
func DropReasonLabel(r tcp.Reason) string {
	if s, ok := reasonLabels[r]; ok {
		return s
	}
	return strings.Join(strings.Fields(r.String()), "_")
}

// stats gathers the counters.
func (a *Server) stats() Stats {
	st := a.s.Stats()
	out := Stats{
		ActiveOpens: st.ActiveOpens, PassiveOpens: st.PassiveOpens,
		AttemptFails: st.AttemptFails, EstabResets: st.EstabResets,
		InSegs: st.InSegs, OutSegs: st.OutSegs, RetransSegs: st.RetransSegs,
		InErrs: st.InErrs, OutRsts: st.OutRsts,
		InPackets: st.InPackets, OutPackets: st.OutPackets, DupAcks: st.DupAcks,
		SynCookiesSent: st.SynCookiesSent, SynCookiesValid: st.SynCookiesValid,
		SynCookiesInvalid: st.SynCookiesInvalid,
		ICMPEchoReplies:   st.ICMPEchoReplies, ICMPErrors: st.ICMPErrors,
		WriteErrors: st.WriteErrors, EventsDropped: a.eventsDropped.Load(),
		Drops: map[string]uint64{
			DropBadChecksum: st.DropBadChecksum, DropMalformed: st.DropMalformed,
			DropNotOurs: st.DropNotOurs, DropNoListener: st.DropNoListener,
			DropListenOverflow: st.DropListenOverflow,
		},
		States: map[string]int{},
	}
	for r, n := range st.ConnDrops {
		out.Drops[DropReasonLabel(r)] += n
	}
	for _, s := range tcp.States {
		out.States[s.String()] = 0
	}
	for _, ci := range a.s.Table(time.Now()) {
		out.States[ci.State.String()]++
		// RFC 4022 tcpCurrEstab: connections in ESTABLISHED or
		// CLOSE-WAIT.
		if ci.State == tcp.Established || ci.State == tcp.CloseWait {
			out.CurrEstab++
		}
	}
	return out
}

func (a *Server) serveStats(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.stats()) }

// Transition is one kind of state change and how often it happened, as
// /transitions serves it.
type Transition struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Cause string `json:"cause"`
	Count uint64 `json:"count"`
}

// transitions lists the stack's transitions in a stable order.
func (a *Server) transitions() []Transition {
	m := a.s.Transitions()
	keys := make([]stack.TransitionKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y stack.TransitionKey) int {
		if x.From != y.From {
			return int(x.From) - int(y.From)
		}
		if x.To != y.To {
			return int(x.To) - int(y.To)
		}
		return strings.Compare(x.Cause(), y.Cause())
	})
	out := make([]Transition, 0, len(keys))
	for _, k := range keys {
		out = append(out, Transition{From: k.From.String(), To: k.To.String(), Cause: k.Cause(), Count: m[k]})
	}
	return out
}

func (a *Server) serveTransitions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, a.transitions())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// serveEvents streams events until the client goes away.
func (a *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mask := tcp.MaskOf(tcp.EventState)
	if kinds := q.Get("kinds"); kinds != "" {
		var err error
		if mask, err = parseKinds(kinds); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	var only *tcp.Tuple
	if c := q.Get("conn"); c != "" {
		t, err := parseConn(c)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		only = &t
	}
	sse := q.Get("format") == "sse"
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming not supported", http.StatusInternalServerError)
		return
	}
	// Subscribe before the client hears back, so whatever it does next
	// is seen.
	ch := make(chan trace.Record, a.opts.EventBuffer)
	obs := tcp.ObserverFunc(func(e *tcp.Event) {
		if only != nil && e.Conn != *only {
			return
		}
		select {
		case ch <- trace.FromEvent(e, a.opts.Start, a.opts.Host):
		default:
			a.eventsDropped.Add(1) // a slow reader loses events, never the stack its pace
		}
	})
	a.eventClients.Add(1)
	defer a.eventClients.Add(-1)
	cancel := a.s.Subscribe(obs, mask)
	defer cancel()
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()

	var buf []byte
	appendRec := func(rec *trace.Record) {
		if sse {
			buf = append(buf, "data: "...)
		}
		buf = rec.AppendJSON(buf)
		if sse {
			buf = append(buf, "\n\n"...)
		} else {
			buf = append(buf, '\n')
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case rec := <-ch:
			buf = buf[:0]
			appendRec(&rec)
			// Write what else is waiting before flushing.
			for more := true; more; {
				select {
				case rec := <-ch:
					appendRec(&rec)
				default:
					more = false
				}
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// parseKinds reads a comma-separated list of event kinds (state,
// segment-in, segment-out, drop, timer-set, timer-fired, timer-stopped,
// call) or "all".
func parseKinds(s string) (tcp.EventMask, error) {
	if s == "all" {
		return tcp.AllEvents, nil
	}
	var m tcp.EventMask
	for _, k := range strings.Split(s, ",") {
		found := false
		for t := tcp.EventState; t <= tcp.EventCall; t++ {
			if t.String() == strings.TrimSpace(k) {
				m |= tcp.MaskOf(t)
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown event kind %q (want all, or some of state, segment-in, segment-out, drop, timer-set, timer-fired, timer-stopped, call)", k)
		}
	}
	return m, nil
}

// parseConn reads a connection as "local->remote".
func parseConn(s string) (tcp.Tuple, error) {
	l, r, ok := strings.Cut(s, "->")
	if !ok {
		return tcp.Tuple{}, fmt.Errorf("conn %q: want LOCAL->REMOTE, for example 10.9.0.2:80->10.9.0.1:40000", s)
	}
	la, err := netip.ParseAddrPort(strings.TrimSpace(l))
	if err != nil {
		return tcp.Tuple{}, fmt.Errorf("conn %q: %w", s, err)
	}
	ra, err := netip.ParseAddrPort(strings.TrimSpace(r))
	if err != nil {
		return tcp.Tuple{}, fmt.Errorf("conn %q: %w", s, err)
	}
	return tcp.Tuple{Local: la, Remote: ra}, nil
}
