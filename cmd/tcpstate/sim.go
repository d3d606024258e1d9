package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/sim"
	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/tcp/cc"
	"github.com/tcpstate/tcpstate/trace"
)

// simFlags are the settings of one `tcpstate sim` run.
type simFlags struct {
	bytes                       byteCount
	loss, reorder, dup, corrupt fraction
	delay, jitter, timeout      time.Duration
	rate                        bitRate
	queue                       int
	seed                        uint64
	cc                          string
	sack, ws, ts                onOff
	mss                         int
	buffer                      byteCount
	trace                       string
	json                        bool
}

func newSimCmd() *cobra.Command {
	f := simFlags{
		bytes: 1 << 20, delay: 10 * time.Millisecond, timeout: 10 * time.Minute,
		seed: 1, cc: "cubic", sack: true, ws: true, ts: true, mss: tcp.DefaultMSS,
	}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run one transfer between two simulated hosts and say what happened",
		Long: "sim runs one transfer from a client to a server over a simulated link, in\n" +
			"virtual time, and prints how long it took, the goodput, the segments sent,\n" +
			"the retransmissions (by timeout and fast), the final states of both sides,\n" +
			"and whether the bytes received matched the bytes sent. It answers questions\n" +
			"like \"what does 5% loss do to this?\" The same flags and seed give the same run.\n\n" +
			"Probabilities (--loss, --reorder, --dup, --corrupt) are a fraction (0.05) or\n" +
			"a percentage (5%), applied to each packet in each direction. Sizes take k, M,\n" +
			"G (powers of 1000) or Ki, Mi, Gi (powers of 1024), with or without B. Rates\n" +
			"are bits per second with the same suffixes (10M, 1.5Gbit).\n\n" +
			"Exit status: 0 when every byte arrived intact, 2 when they did not or the\n" +
			"transfer did not finish within --timeout of virtual time, 1 for bad flags.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSim(cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.Var(&f.bytes, "bytes", "bytes the client sends to the server (1000000, 10MB, 1MiB)")
	fl.Var(&f.loss, "loss", "probability that a packet is lost (0.05 or 5%)")
	fl.Var(&f.reorder, "reorder", "probability that a packet is held back so later ones overtake it (0.05 or 5%)")
	fl.Var(&f.dup, "dup", "probability that a packet is delivered twice (0.05 or 5%)")
	fl.Var(&f.corrupt, "corrupt", "probability that a packet is damaged, so the receiver's checksum drops it (0.05 or 5%)")
	fl.DurationVar(&f.delay, "delay", f.delay, "one-way delay of the link")
	fl.DurationVar(&f.jitter, "jitter", 0, "extra random delay per packet, up to this much")
	fl.Var(&f.rate, "rate", "link speed in bits per second (10M, 1Gbit); 0 is unlimited")
	fl.IntVar(&f.queue, "queue", 0, "packets the link queues at --rate before dropping; 0 is unlimited")
	fl.Uint64Var(&f.seed, "seed", f.seed, "seed of the simulation's randomness")
	fl.StringVar(&f.cc, "cc", f.cc, "congestion control: cubic, newreno or bbr")
	fl.Var(&f.sack, "sack", "offer SACK (RFC 2018): on or off")
	fl.Var(&f.ws, "ws", "offer window scaling (RFC 7323): on or off")
	fl.Var(&f.ts, "ts", "offer timestamps (RFC 7323): on or off")
	fl.IntVar(&f.mss, "mss", f.mss, "maximum segment size both hosts announce")
	fl.Var(&f.buffer, "buffer", "send and receive buffer size of both hosts (default 256KiB)")
	fl.DurationVar(&f.timeout, "timeout", f.timeout, "virtual time the transfer may take")
	fl.StringVar(&f.trace, "trace", "", "write every event as JSON lines to this file")
	fl.BoolVar(&f.json, "json", false, "print the summary as one JSON object")
	return cmd
}

// exitError is an error with the process exit status it calls for.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// tamper, when set (by tests), changes received bytes before they are
// checked, to force a mismatch.
var tamper func(off int64, p []byte)

// Addresses of the simulated hosts.
var (
	simClient = netip.MustParseAddr("10.0.0.1")
	simServer = netip.MustParseAddr("10.0.0.2")
)

const simPort = 80

// sideStats counts what one side did, from its connection's events.
type sideStats struct {
	Segments   int      `json:"segments"`
	DataSegs   int      `json:"data_segments"`
	DataBytes  int64    `json:"data_bytes"`
	RtxTimeout int      `json:"retransmits_timeout"`
	RtxFast    int      `json:"retransmits_fast"`
	RtxOther   int      `json:"retransmits_other"`
	RtxBytes   int64    `json:"retransmitted_bytes"`
	Probes     int      `json:"window_probes"`
	States     []string `json:"states"`
	State      string   `json:"state"`
	Err        string   `json:"error,omitempty"`
	stateSeen  bool
}

func (s *sideStats) Observe(e *tcp.Event) {
	switch e.Type {
	case tcp.EventState:
		if !s.stateSeen {
			s.stateSeen = true
			s.States = append(s.States, e.From.String())
		}
		s.States = append(s.States, e.To.String())
	case tcp.EventSegmentOut:
		s.Segments++
		if e.Segment.Len > 0 {
			s.DataSegs++
			s.DataBytes += int64(e.Segment.Len)
		}
		if e.Reason == tcp.ReasonProbe {
			s.Probes++
		}
		if !e.Retransmit {
			return
		}
		switch e.Reason {
		case tcp.ReasonRetransmit:
			s.RtxTimeout++
		case tcp.ReasonFastRetransmit:
			s.RtxFast++
		case tcp.ReasonProbe, tcp.ReasonKeepAlive:
			return // probes resend a byte on purpose; they are not repairs
		default:
			s.RtxOther++
		}
		s.RtxBytes += int64(e.Segment.Len)
	}
}

// simSummary is what a run did; --json prints it as is.
type simSummary struct {
	Bytes        int64      `json:"bytes"`
	Seed         uint64     `json:"seed"`
	Finished     bool       `json:"finished"`
	Duration     float64    `json:"duration_s"`
	GoodputBits  float64    `json:"goodput_bps"`
	Received     int64      `json:"received"`
	Match        bool       `json:"match"`
	FirstBad     *int64     `json:"first_mismatch,omitempty"`
	Client       *sideStats `json:"client"`
	Server       *sideStats `json:"server"`
	Network      sim.Stats  `json:"network"`
	VirtualTotal float64    `json:"virtual_total_s"`
}

func (f *simFlags) validate() (tcp.Config, error) {
	cfg := tcp.Config{
		MSS:               uint16(f.mss),
		CongestionControl: f.cc,
		NoSACK:            !bool(f.sack),
		NoWindowScale:     !bool(f.ws),
		NoTimestamps:      !bool(f.ts),
		SendBuffer:        int(f.buffer),
		ReceiveBuffer:     int(f.buffer),
	}
	switch {
	case f.mss < 64 || f.mss > 65455:
		return cfg, fmt.Errorf("invalid --mss %d: want 64 to 65455", f.mss)
	case f.delay < 0:
		return cfg, fmt.Errorf("invalid --delay %v: want zero or more", f.delay)
	case f.jitter < 0:
		return cfg, fmt.Errorf("invalid --jitter %v: want zero or more", f.jitter)
	case f.timeout <= 0:
		return cfg, fmt.Errorf("invalid --timeout %v: want more than zero", f.timeout)
	case f.queue < 0:
		return cfg, fmt.Errorf("invalid --queue %d: want zero or more", f.queue)
	case f.buffer > 1<<30:
		return cfg, fmt.Errorf("invalid --buffer %d: at most 1GiB", f.buffer)
	}
	if !slices.Contains(cc.Names, f.cc) {
		return cfg, fmt.Errorf("invalid --cc %q: want %s", f.cc, strings.Join(cc.Names, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func runSim(out io.Writer, f simFlags) error {
	cfg, err := f.validate()
	if err != nil {
		return err
	}
	w := sim.New(f.seed)
	var (
		tw    *trace.JSONWriter
		tbuf  *bufio.Writer
		tfile *os.File
	)
	if f.trace != "" {
		tfile, err = os.Create(f.trace)
		if err != nil {
			return err
		}
		defer tfile.Close()
		tbuf = bufio.NewWriterSize(tfile, 1<<16)
		tw = trace.NewJSONWriter(tbuf)
		w.SetTrace(tw)
	}
	cs, ss := &sideStats{}, &sideStats{}
	ccfg, scfg := cfg, cfg
	ccfg.Observer, scfg.Observer = cs, ss
	client := w.NewHost("client", simClient, ccfg)
	server := w.NewHost("server", simServer, scfg)
	link := sim.LinkConfig{
		Delay: f.delay, Jitter: f.jitter, Rate: int64(f.rate / 8), QueueLimit: f.queue,
		Loss: float64(f.loss), Duplicate: float64(f.dup), Reorder: float64(f.reorder), Corrupt: float64(f.corrupt),
	}
	w.Link(client, server, link, link)
	server.Listen(simPort)

	key := f.seed*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	var (
		sc       *sim.Conn
		got      int64
		firstBad int64 = -1
		doneAt   time.Duration
		buf      []byte
	)
	server.OnAccept(func(c *sim.Conn) {
		if sc != nil {
			return
		}
		sc = c
		c.OnRead(func(p []byte) {
			if tamper != nil {
				tamper(got, p)
			}
			if firstBad < 0 {
				if cap(buf) < len(p) {
					buf = make([]byte, len(p))
				}
				want := buf[:len(p)]
				fillPattern(key, got, want)
				for i := range p {
					if p[i] != want[i] {
						firstBad = got + int64(i)
						break
					}
				}
			}
			got += int64(len(p))
		})
		c.OnState(func(c *sim.Conn, _, to tcp.State) {
			if to == tcp.CloseWait {
				c.Close()
			}
		})
	})
	cc, err := client.Dial(server.AddrPort(simPort))
	if err != nil {
		return err
	}
	total := int64(f.bytes)
	cc.WriteStream(total, func(off int64, p []byte) { fillPattern(key, off, p) })
	cc.Close()
	finished := w.RunUntil(f.timeout, func() bool {
		return sc != nil && sc.EOF() && sc.ReceivedLen() >= total
	})
	if finished {
		doneAt = w.Elapsed()
		// Let the close finish: LAST-ACK, and TIME-WAIT's 2MSL.
		w.RunUntilIdle(w.Elapsed() + time.Hour)
	}

	sum := simSummary{
		Bytes: total, Seed: f.seed, Finished: finished, Received: got,
		Match:  finished && got == total && firstBad < 0,
		Client: cs, Server: ss, Network: w.Stats, VirtualTotal: w.Elapsed().Seconds(),
	}
	if firstBad >= 0 {
		sum.FirstBad = &firstBad
	}
	if finished {
		sum.Duration = doneAt.Seconds()
		if doneAt > 0 {
			sum.GoodputBits = float64(total) * 8 / doneAt.Seconds()
		}
	}
	for _, x := range []struct {
		s *sideStats
		c *sim.Conn
	}{{cs, cc}, {ss, sc}} {
		x.s.State = tcp.Closed.String()
		if x.c != nil {
			x.s.State = x.c.State().String()
			if err := x.c.Err(); err != nil {
				x.s.Err = err.Error()
			}
		}
	}
	if f.json {
		b, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
			return err
		}
	} else if err := writeSimText(out, &f, &sum); err != nil {
		return err
	}
	if tw != nil {
		err := tw.Err()
		if err == nil {
			err = tbuf.Flush()
		}
		if err == nil {
			err = tfile.Close()
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.trace, err)
		}
	}
	switch {
	case !finished:
		return &exitError{2, fmt.Errorf("the transfer did not finish within %v of virtual time (%d of %d bytes arrived)", f.timeout, got, total)}
	case firstBad >= 0:
		return &exitError{2, fmt.Errorf("the bytes received differ from the bytes sent, first at byte %d", firstBad)}
	case got != total:
		return &exitError{2, fmt.Errorf("received %d bytes, sent %d", got, total)}
	}
	return nil
}

func writeSimText(out io.Writer, f *simFlags, s *simSummary) error {
	bw := bufio.NewWriter(out)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("transfer     %s client -> server, seed %d, %s, mss %d, sack %v, ws %v, ts %v\n",
		fmtBytes(s.Bytes), s.Seed, f.cc, f.mss, f.sack, f.ws, f.ts)
	link := fmt.Sprintf("delay %v", f.delay)
	if f.jitter > 0 {
		link += fmt.Sprintf(" (+%v jitter)", f.jitter)
	}
	if f.rate > 0 {
		link += ", " + fmtRate(float64(f.rate))
	}
	for _, x := range []struct {
		name string
		v    fraction
	}{{"loss", f.loss}, {"reorder", f.reorder}, {"dup", f.dup}, {"corrupt", f.corrupt}} {
		if x.v > 0 {
			link += fmt.Sprintf(", %s %s", x.name, x.v)
		}
	}
	p("link         %s, each way\n", link)
	if s.Finished {
		p("duration     %v virtual, from the SYN to the last byte read\n", time.Duration(s.Duration*float64(time.Second)).Round(time.Microsecond))
		p("goodput      %s\n", fmtRate(s.GoodputBits))
	} else {
		p("duration     did not finish within %v virtual\n", f.timeout)
	}
	for _, x := range []struct {
		name string
		st   *sideStats
	}{{"client", s.Client}, {"server", s.Server}} {
		st := x.st
		p("%-12s %d segments sent (%d with data, %s), %d retransmitted: %d by timeout, %d fast",
			x.name, st.Segments, st.DataSegs, fmtBytes(st.DataBytes), st.RtxTimeout+st.RtxFast+st.RtxOther, st.RtxTimeout, st.RtxFast)
		if st.RtxOther > 0 {
			p(", %d other", st.RtxOther)
		}
		if st.Probes > 0 {
			p("; %d window probes", st.Probes)
		}
		p("\n")
	}
	n := s.Network
	p("network      %d packets: %d lost, %d duplicated, %d reordered, %d corrupted (%d dropped by checksum)",
		n.Sent, n.Lost, n.Duplicated, n.Reordered, n.Corrupted, n.BadPackets)
	if n.QueueDrops > 0 {
		p(", %d queue drops", n.QueueDrops)
	}
	p("\n")
	for _, x := range []struct {
		name string
		st   *sideStats
	}{{"client", s.Client}, {"server", s.Server}} {
		p("%-12s %s", x.name+" state", x.st.State)
		if x.st.Err != "" {
			p(" (%s)", x.st.Err)
		}
		p(" via %s\n", strings.Join(x.st.States, " "))
	}
	switch {
	case s.Match:
		p("data         %s received, matches what was sent\n", fmtBytes(s.Received))
	case s.FirstBad != nil:
		p("data         %s received, DIFFERS from what was sent, first at byte %d\n", fmtBytes(s.Received), *s.FirstBad)
	default:
		p("data         %s of %s received: INCOMPLETE\n", fmtBytes(s.Received), fmtBytes(s.Bytes))
	}
	return bw.Flush()
}

// fillPattern writes the bytes of the run's data at offsets [off,
// off+len(p)): a keyed hash of each 8-byte word's index, so a byte out of
// place or damaged shows.
func fillPattern(key uint64, off int64, p []byte) {
	for i := 0; i < len(p); {
		o := off + int64(i)
		word := splitmix(key ^ uint64(o>>3))
		for sh := o & 7; sh < 8 && i < len(p); sh++ {
			p[i] = byte(word >> (8 * sh))
			i++
		}
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func fmtBytes(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%d bytes (%.1f MB)", n, float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%d bytes (%.1f kB)", n, float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

func fmtRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.2f kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", bps)
}

// fraction is a probability flag: "0.05" or "5%".
type fraction float64

func (f fraction) String() string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(f)*100, 'g', -1, 64) + "%"
}

func (f *fraction) Set(s string) error {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	t = strings.TrimSuffix(t, "%")
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) {
		return errors.New("want a fraction (0.05) or a percentage (5%)")
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > 1 {
		return errors.New("want between 0 and 1 (0% and 100%)")
	}
	*f = fraction(v)
	return nil
}

func (f *fraction) Type() string { return "P" }

// onOff is a boolean flag spelled on or off.
type onOff bool

func (o onOff) String() string {
	if o {
		return "on"
	}
	return "off"
}

func (o *onOff) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "yes", "1":
		*o = true
	case "off", "false", "no", "0":
		*o = false
	default:
		return errors.New("want on or off")
	}
	return nil
}

func (o *onOff) Type() string { return "on|off" }

// byteCount is a size flag: 1000000, 10MB, 64KiB.
type byteCount int64

func (b byteCount) String() string { return strconv.FormatInt(int64(b), 10) }

func (b *byteCount) Set(s string) error {
	v, err := parseScaled(strings.TrimSuffix(strings.TrimSpace(s), "B"))
	if err != nil || v < 0 || v > math.MaxInt64/2 || v != math.Trunc(v) {
		return errors.New("want a whole number of bytes, such as 1000000, 10MB or 64KiB")
	}
	*b = byteCount(v)
	return nil
}

func (b *byteCount) Type() string { return "N" }

// bitRate is a link speed flag in bits per second: 10M, 1.5Gbit, 100k.
type bitRate float64

func (r bitRate) String() string {
	if r == 0 {
		return "0"
	}
	return fmtRate(float64(r))
}

func (r *bitRate) Set(s string) error {
	t := strings.TrimSpace(s)
	for _, suf := range []string{"bit/s", "bps", "b/s", "bit"} {
		if strings.HasSuffix(strings.ToLower(t), suf) {
			t = t[:len(t)-len(suf)]
			break
		}
	}
	v, err := parseScaled(t)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return errors.New("want bits per second, such as 10M, 1.5Gbit or 0 for unlimited")
	}
	if v > 0 && v < 8 {
		return errors.New("want at least 8 bit/s, or 0 for unlimited")
	}
	*r = bitRate(v)
	return nil
}

func (r *bitRate) Type() string { return "BITS/S" }

// parseScaled reads a number with an optional k, M, G (powers of 1000) or
// Ki, Mi, Gi (powers of 1024) suffix.
func parseScaled(s string) (float64, error) {
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) {
		return 0, errors.New("not a number")
	}
	return v * mult, nil
}
