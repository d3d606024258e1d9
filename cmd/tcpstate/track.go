package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/trace"
	"github.com/tcpstate/tcpstate/track"
	"github.com/tcpstate/tcpstate/track/capture"
	"github.com/tcpstate/tcpstate/track/ipvs"
)

type trackFlags struct {
	format    string
	model     string
	state     string
	at        string
	timeWait  time.Duration
	ipvsMode  string
	diagnose  bool
	ladder    string
	diagram   bool
	timeline  bool
	out       string
	live      string
	interval  time.Duration
	admin     string
	duration  time.Duration
	width     int
	th        track.Thresholds
	noProgres bool
	workers   int
}

func newTrackCmd() *cobra.Command {
	var f trackFlags
	cmd := &cobra.Command{
		Use:   "track [FILE]",
		Short: "Follow the TCP connections of a capture or a live interface: both endpoints' states, conntrack, IPVS, findings",
		Long: "track reads a pcap or pcapng capture (or captures live with --live IFACE) and shows, for\n" +
			"every TCP connection, both endpoints' RFC 9293 states as inferred from what passed, what\n" +
			"Linux conntrack and IPVS would show for it with their timers, and Zeek's conn_state.\n\n" +
			"The instant is the last packet's timestamp, or --at S seconds after the first packet\n" +
			"(or an RFC 3339 time). --model rfc|conntrack|ipvs picks the table's layout (ss -tan,\n" +
			"conntrack -L, ipvsadm -lc); --state NAME filters in any spelling. --format json prints\n" +
			"one JSON object per connection. --diagnose lists what looks wrong (SYN floods,\n" +
			"CLOSE-WAIT leaks, TIME-WAIT pile-ups, half-open connections, RST storms,\n" +
			"retransmissions, zero windows). --ladder A-B draws one connection's ladder (text or\n" +
			"--format svg), --diagram the state diagram with each edge's count (--format svg|dot),\n" +
			"--timeline the number of endpoints in each state over time (SVG).\n\n" +
			"With --format json (and no --diagnose), a connection is written as soon as it is final:\n" +
			"both endpoints CLOSED and neither conntrack nor IPVS holding an entry for it, so that\n" +
			"nothing later can change it; the others follow at the end, in order of first packet.\n" +
			"Memory then stays bounded by the connections alive, whatever the capture's length.\n\n" +
			"Exit status: 0 when the whole capture was read; 2 when it is damaged part-way (the\n" +
			"connections read before the damage are shown and stderr says what was skipped); 1\n" +
			"for a file that cannot be read at all (missing, empty, not a capture) or bad flags.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			return runTrack(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), path, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "", "output format: table or json; svg or text for --ladder; svg or dot for --diagram")
	fl.StringVar(&f.model, "model", "rfc", "table layout and --state model: rfc, conntrack or ipvs")
	fl.StringVar(&f.state, "state", "", "show only connections in this state (RFC, ss, conntrack or IPVS spelling)")
	fl.StringVar(&f.at, "at", "", "the instant: seconds after the first packet, or an RFC 3339 time (default: the last packet)")
	fl.DurationVar(&f.timeWait, "time-wait", track.DefaultTimeWait, "how long TIME-WAIT lasts")
	fl.StringVar(&f.ipvsMode, "ipvs-mode", "nat", "IPVS forwarding method: nat (the director sees both directions) or dr")
	fl.BoolVar(&f.diagnose, "diagnose", false, "report findings instead of connections")
	fl.StringVar(&f.ladder, "ladder", "", "draw the ladder of the connection A-B (e.g. 10.0.0.1:40000-10.0.0.2:80)")
	fl.BoolVar(&f.diagram, "diagram", false, "draw the state diagram with each transition's count")
	fl.BoolVar(&f.timeline, "timeline", false, "plot the number of endpoints in each state over time (SVG)")
	fl.StringVarP(&f.out, "output", "o", "", "write to this file instead of stdout")
	fl.StringVar(&f.live, "live", "", "capture live on this interface (AF_PACKET, root) and refresh the table until interrupted")
	fl.DurationVar(&f.interval, "interval", time.Second, "refresh interval of --live")
	fl.StringVar(&f.admin, "admin", "", "with --live: serve Prometheus metrics on this address (/metrics)")
	fl.DurationVar(&f.duration, "duration", 0, "with --live: stop after this long (0: until interrupted)")
	fl.IntVar(&f.width, "width", 100, "width of a text ladder")
	fl.IntVar(&f.workers, "workers", 0, "trackers sharing the connections by flow hash, one goroutine each (0: one per CPU; 1: a single tracker); the output is the same for any N; --ladder, --diagram and --timeline use one")
	fl.IntVar(&f.th.SynFlood, "syn-flood", track.DefaultSynFlood, "--diagnose: SYN-RECEIVED connections at one server that make a SYN flood")
	fl.IntVar(&f.th.TimeWait, "time-wait-pileup", track.DefaultTimeWaitPileup, "--diagnose: TIME-WAIT connections toward one server that make a pile-up")
	fl.DurationVar(&f.th.CloseWait, "close-wait-age", track.DefaultCloseWait, "--diagnose: time in CLOSE-WAIT that makes a leak")
	fl.IntVar(&f.th.RSTStorm, "rst-storm", track.DefaultRSTStorm, "--diagnose: connections to one server ended by RST that make a storm")
	fl.IntVar(&f.th.Retrans, "retrans", track.DefaultRetrans, "--diagnose: retransmissions in one direction worth reporting")
	fl.BoolVar(&f.noProgres, "no-progress", false, "no progress bar on stderr")
	return cmd
}

// instant is a parsed --at.
type instant struct {
	set bool
	rel time.Duration
	abs time.Time
}

func parseAt(s string) (instant, error) {
	if s == "" {
		return instant{}, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v < 1e9 {
		return instant{set: true, rel: time.Duration(v * float64(time.Second))}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return instant{}, fmt.Errorf("--at %q: want seconds after the first packet or an RFC 3339 time", s)
	}
	return instant{set: true, abs: t}, nil
}

func (i instant) resolve(first time.Time) time.Time {
	if !i.abs.IsZero() {
		return i.abs
	}
	return first.Add(i.rel)
}

func runTrack(ctx context.Context, stdout, stderr io.Writer, path string, f trackFlags) error {
	model, err := track.ParseModel(f.model)
	if err != nil {
		return err
	}
	var filter *track.Filter
	if f.state != "" {
		if filter, err = track.NewFilter(f.state); err != nil {
			return err
		}
	}
	at, err := parseAt(f.at)
	if err != nil {
		return err
	}
	cfg := track.Config{TimeWait: f.timeWait}
	switch strings.ToLower(f.ipvsMode) {
	case "nat":
		cfg.IPVSMode = ipvs.NAT
	case "dr", "tun":
		cfg.IPVSMode = ipvs.DR
	default:
		return fmt.Errorf("unknown --ipvs-mode %q (want nat or dr)", f.ipvsMode)
	}
	if f.timeWait <= 0 {
		return fmt.Errorf("--time-wait %v must be positive", f.timeWait)
	}
	modes := 0
	for _, b := range []bool{f.diagnose, f.ladder != "", f.diagram, f.timeline} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("choose one of --diagnose, --ladder, --diagram and --timeline")
	}
	var ladderA, ladderB netip.AddrPort
	if f.ladder != "" {
		tu, err := parseConnFlag(f.ladder)
		if err != nil {
			return fmt.Errorf("--ladder: %w", err)
		}
		ladderA, ladderB = tu.Local, tu.Remote
		cfg.Keep = func(a, b netip.AddrPort) bool {
			return a == ladderA && b == ladderB || a == ladderB && b == ladderA
		}
	}
	if err := checkFormat(f); err != nil {
		return err
	}
	if f.live != "" {
		if path != "" {
			return errors.New("give either a capture file or --live IFACE, not both")
		}
		return runTrackLive(ctx, stdout, stderr, cfg, model, filter, f)
	}
	if path == "" {
		return errors.New("no capture file (give FILE, or --live IFACE)")
	}
	if f.admin != "" {
		return errors.New("--admin needs --live")
	}

	out := stdout
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return err
		}
		defer file.Close()
		out = file
	}

	// JSON connections are streamed as they become final.
	streaming := f.format == "json" && !f.diagnose && f.ladder == "" && !f.diagram && !f.timeline
	var jsonErr error
	if streaming {
		var line []byte
		cfg.Done = func(v *track.ConnView) {
			if jsonErr == nil && (filter == nil || filter.Match(v, model)) {
				line = v.AppendJSON(line[:0])
				_, jsonErr = out.Write(line)
			}
		}
	}
	if f.workers < 0 {
		return fmt.Errorf("--workers %d must not be negative", f.workers)
	}
	if f.workers != 1 && f.ladder == "" && !f.diagram && !f.timeline {
		// Connections sharded over several trackers (issue 8, point 10):
		// the same output as one tracker, in the same order.
		sh := track.NewSharded(cfg, f.workers)
		defer sh.Close()
		readErr, err := readCapture(path, sh, at, stderr, !f.noProgres, nil)
		if err != nil {
			return err
		}
		if sh.Packets() == 0 {
			if readErr != nil {
				return fmt.Errorf("%s: %v", path, readErr)
			}
			return fmt.Errorf("%s: no TCP packets in the capture", path)
		}
		when := sh.Last()
		if at.set {
			when = at.resolve(sh.First())
		}
		if streaming {
			sh.Flush(when)
		}
		if jsonErr != nil {
			return jsonErr
		}
		if err := writeViews(out, sh.Snapshot(when), when, sh.First(), model, filter, f); err != nil {
			return err
		}
		if readErr != nil {
			return &exitError{2, fmt.Errorf("%s: %v; showed the %d TCP packets read before it", path, readErr, sh.Packets())}
		}
		return nil
	}
	tr := track.New(cfg)
	var samples []track.Sample
	var sampler func(now time.Time, final bool)
	if f.timeline {
		sampler = timelineSampler(tr, &samples)
	}
	readErr, err := readCapture(path, tr, at, stderr, !f.noProgres, sampler)
	if err != nil {
		return err
	}
	if tr.Packets() == 0 {
		if readErr != nil {
			return fmt.Errorf("%s: %v", path, readErr)
		}
		return fmt.Errorf("%s: no TCP packets in the capture", path)
	}
	when := tr.Last()
	if at.set {
		when = at.resolve(tr.First())
	}
	if streaming {
		tr.Flush(when)
	}
	if jsonErr != nil {
		return jsonErr
	}
	if err := writeTrackOutput(out, tr, when, model, filter, f, ladderA, ladderB, samples, stderr); err != nil {
		return err
	}
	if readErr != nil {
		return &exitError{2, fmt.Errorf("%s: %v; showed the %d TCP packets read before it", path, readErr, tr.Packets())}
	}
	return nil
}

func checkFormat(f trackFlags) error {
	ok := map[string]bool{"": true}
	switch {
	case f.ladder != "":
		ok["text"], ok["svg"] = true, true
	case f.diagram:
		ok["svg"], ok["dot"] = true, true
	case f.timeline:
		ok["svg"] = true
	default:
		ok["table"], ok["json"] = true, true
	}
	if !ok[f.format] {
		return fmt.Errorf("--format %q does not fit this output", f.format)
	}
	return nil
}

// timelineSampler returns the function readCapture calls before each
// packet: it samples the tracker at regular instants, doubling the
// interval (and thinning the samples) to keep about 300-600 of them.
func timelineSampler(tr *track.Tracker, samples *[]track.Sample) func(now time.Time, final bool) {
	var next time.Time
	step := 10 * time.Millisecond
	return func(now time.Time, final bool) {
		if next.IsZero() {
			next = now
		}
		if final {
			defer func() {
				if s := *samples; len(s) == 0 || s[len(s)-1].T.Before(now) {
					*samples = append(s, tr.Sample(now))
				}
			}()
		}
		for !now.Before(next) {
			*samples = append(*samples, tr.Sample(next))
			next = next.Add(step)
			if len(*samples) > 600 {
				s := *samples
				k := 0
				for i := 0; i < len(s); i += 2 {
					s[k] = s[i]
					k++
				}
				*samples = s[:k]
				step *= 2
				next = s[k-1].T.Add(step)
			}
		}
	}
}

// feeder is what readCapture feeds: a Tracker or a Sharded.
type feeder interface {
	Feed(p *capture.Packet)
	Packets() uint64
	First() time.Time
	Last() time.Time
}

// readCapture feeds the capture to tr, up to the instant at when set.
// It returns the error that stopped reading part-way (a damaged capture),
// and err for a file that cannot be read at all.
func readCapture(path string, tr feeder, at instant, stderr io.Writer, progress bool, sampler func(time.Time, bool)) (readErr, err error) {
	r, err := capture.Open(path)
	if err != nil {
		return nil, oneLine(err)
	}
	defer r.Close()
	bar := newProgressBar(stderr, progress)
	var limit time.Time
	for n := 0; ; n++ {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = oneLine(err)
			break
		}
		if at.set {
			if limit.IsZero() {
				limit = at.resolve(p.T)
			}
			if p.T.After(limit) {
				break
			}
		}
		if sampler != nil {
			sampler(p.T, false)
		}
		tr.Feed(p)
		if n&4095 == 0 {
			bar.update(r.Progress())
		}
	}
	if sampler != nil && tr.Packets() > 0 {
		end := tr.Last()
		if at.set {
			end = at.resolve(tr.First())
		}
		sampler(end, true)
	}
	bar.done()
	st := r.Stats()
	var bad int64
	var reasons []string
	for k, v := range st.Malformed {
		bad += v
		reasons = append(reasons, fmt.Sprintf("%s: %d", k, v))
	}
	if bad > 0 {
		sort.Strings(reasons)
		fmt.Fprintf(stderr, "tcpstate: %s: skipped %d malformed frames of %d (%s)\n", path, bad, st.Frames, strings.Join(reasons, ", "))
	}
	return readErr, nil
}

func oneLine(err error) error {
	return errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
}

// progressBar draws a bar on stderr while a large file is read, when
// stderr is a terminal.
type progressBar struct {
	w    io.Writer
	on   bool
	last time.Time
	drew bool
}

func newProgressBar(w io.Writer, want bool) *progressBar {
	b := &progressBar{w: w}
	if f, ok := w.(*os.File); ok && want {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			b.on = true
		}
	}
	return b
}

func (b *progressBar) update(read, total int64) {
	if !b.on || total <= 0 || time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 40
	frac := float64(read) / float64(total)
	frac = min(max(frac, 0), 1)
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %d/%d MB", strings.Repeat("#", n), strings.Repeat(".", width-n), 100*frac, read>>20, total>>20)
	b.drew = true
}

func (b *progressBar) done() {
	if b.drew {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 70))
	}
}

func filterViews(views []track.ConnView, filter *track.Filter, model track.Model) []track.ConnView {
	if filter == nil {
		return views
	}
	out := views[:0:0]
	for i := range views {
		if filter.Match(&views[i], model) {
			out = append(out, views[i])
		}
	}
	return out
}

func writeTrackOutput(out io.Writer, tr *track.Tracker, when time.Time, model track.Model, filter *track.Filter,
	f trackFlags, la, lb netip.AddrPort, samples []track.Sample, stderr io.Writer) error {
	switch {
	case f.ladder != "":
		tr.Finish(when)
		conns := tr.Find(la, lb)
		if len(conns) == 0 {
			return fmt.Errorf("--ladder %s: no such connection in the capture", f.ladder)
		}
		opt := trace.LadderOptions{Width: f.width}
		if f.format == "svg" {
			if len(conns) > 1 {
				fmt.Fprintf(stderr, "tcpstate: %d connections on %s; drawing the last\n", len(conns), f.ladder)
			}
			return trace.LadderSVG(out, conns[len(conns)-1].Records(), opt)
		}
		for i, c := range conns {
			if len(conns) > 1 {
				fmt.Fprintf(out, "== connection %d of %d: %s -> %s\n", i+1, len(conns), c.Client(), c.Server())
			}
			if err := trace.Ladder(out, c.Records(), opt); err != nil {
				return err
			}
		}
		return nil
	case f.diagram:
		tr.Finish(when)
		opt := trace.DiagramOptions{Title: fmt.Sprintf("TCP state transitions inferred from the capture (%d connections)", len(tr.Conns()))}
		if f.format == "dot" {
			return trace.DiagramDOT(out, tr.TransitionCounts(), opt)
		}
		return trace.DiagramSVG(out, tr.TransitionCounts(), opt)
	case f.timeline:
		return track.WriteTimelineSVG(out, samples, fmt.Sprintf("TCP endpoints by state (%d connections)", len(tr.Conns())))
	}
	return writeViews(out, tr.Snapshot(when), when, tr.First(), model, filter, f)
}

// writeViews writes a snapshot: findings with --diagnose, else the
// connections as JSON or a table.
func writeViews(out io.Writer, views []track.ConnView, when, first time.Time, model track.Model, filter *track.Filter, f trackFlags) error {
	if f.diagnose {
		fs := track.Diagnose(views, when, when.Sub(first), f.th)
		if f.format == "json" {
			return track.WriteFindingsJSON(out, fs)
		}
		return track.WriteFindings(out, fs)
	}
	views = filterViews(views, filter, model)
	if f.format == "json" {
		return track.WriteJSON(out, views)
	}
	return track.WriteTable(out, views, model)
}

// runTrackLive captures on f.live and redraws the table every interval
// until interrupted (or f.duration passes).
func runTrackLive(ctx context.Context, stdout, stderr io.Writer, cfg track.Config, model track.Model, filter *track.Filter, f trackFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	r, err := capture.OpenLive(f.live, 0)
	if err != nil {
		return oneLine(err)
	}
	defer r.Close()
	go func() { <-ctx.Done(); r.Close() }()

	tr := track.New(cfg)
	var mu sync.Mutex
	if f.admin != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(&trackCollector{tr: tr, mu: &mu, th: f.th})
		ln, err := net.Listen("tcp", f.admin)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stderr, "tcpstate: metrics on http://%s/metrics\n", ln.Addr())
	}
	redraw := func() {
		mu.Lock()
		now := time.Now()
		tr.Prune(now, 5*time.Minute)
		views := filterViews(tr.Snapshot(now), filter, model)
		mu.Unlock()
		fmt.Fprint(stdout, "\x1b[H\x1b[2J")
		fmt.Fprintf(stdout, "tcpstate track --live %s  %s  (%d connections)\n\n", f.live, now.Format(time.TimeOnly), len(views))
		if f.format == "json" {
			track.WriteJSON(stdout, views)
		} else {
			track.WriteTable(stdout, views, model)
		}
	}
	next := time.Now().Add(f.interval)
	for {
		r.SetReadDeadline(next)
		p, err := r.Next()
		switch {
		case err == nil:
			mu.Lock()
			tr.Feed(p)
			mu.Unlock()
			if time.Now().Before(next) {
				continue
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
		case ctx.Err() != nil || err == io.EOF:
			redraw()
			return nil
		default:
			return oneLine(err)
		}
		redraw()
		next = time.Now().Add(f.interval)
	}
}

// trackCollector exposes a live tracker's view as Prometheus metrics:
// connections per state per model, and findings per kind.
type trackCollector struct {
	tr *track.Tracker
	mu *sync.Mutex
	th track.Thresholds
}

var (
	descConns = prometheus.NewDesc("tcpstate_track_connections",
		"Connections (for model rfc: endpoints) in each state, per model.", []string{"model", "state"}, nil)
	descFindings = prometheus.NewDesc("tcpstate_track_findings",
		"Findings of --diagnose by kind.", []string{"kind"}, nil)
	descPackets = prometheus.NewDesc("tcpstate_track_packets_total",
		"TCP packets seen.", nil, nil)
)

func (c *trackCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConns
	ch <- descFindings
	ch <- descPackets
}

func (c *trackCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := time.Now()
	views := c.tr.Snapshot(now)
	span := now.Sub(c.tr.First())
	packets := c.tr.Packets()
	c.mu.Unlock()
	for _, m := range []track.Model{track.ModelRFC, track.ModelConntrack, track.ModelIPVS} {
		for st, n := range track.StateCounts(views, m) {
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(n), string(m), st)
		}
	}
	kinds := map[string]int{}
	for _, fd := range track.Diagnose(views, now, span, c.th) {
		kinds[fd.Kind]++
	}
	for _, k := range track.FindingKinds {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(kinds[k]), k)
	}
	ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(packets))
}
