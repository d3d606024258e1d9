package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/admin"
	"github.com/tcpstate/tcpstate/tcp"
)

// adminGet fetches path from a running stack's admin endpoint and decodes
// its JSON into v.
func adminGet(ctx context.Context, addr, path string, v any) error {
	if addr == "" {
		return errors.New("--admin is required: the ADDR a running `tcpstate serve --admin ADDR` or `dial --admin ADDR` listens on")
	}
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin endpoint %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("admin endpoint %s%s: %s: %s", addr, path, resp.Status, bytes.TrimSpace(msg))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("admin endpoint %s%s: bad JSON: %w", addr, path, err)
	}
	return nil
}

type connsFlags struct {
	admin    string
	state    string
	watch    bool
	interval time.Duration
	count    int
	json     bool
}

func newConnsCmd() *cobra.Command {
	var f connsFlags
	cmd := &cobra.Command{
		Use:   "conns --admin ADDR [--state NAME] [--watch] [--json]",
		Short: "Print a running stack's connection table, as ss -tano does",
		Long: "conns asks a running stack's admin endpoint (serve or dial with --admin) for\n" +
			"its connections and prints them one per line, as `ss -tano` and `ipvsadm -lc`\n" +
			"do: state, receive and send queue bytes, local and peer address, and the\n" +
			"running timer with its time left (retransmission with its count, persist,\n" +
			"keepalive, TIME-WAIT's 2MSL), then a count per state.\n\n" +
			"--state takes RFC, ss, conntrack and ipvsadm spellings: SYN-RECEIVED,\n" +
			"syn-recv, syn_recv, FIN_WAIT (both FIN-WAITs), and ss's groups connected,\n" +
			"synchronized and bucket.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.state != "" {
				if _, err := tcp.StatesNamed(f.state); err != nil {
					return fmt.Errorf("--state: %w", err)
				}
			}
			if f.interval <= 0 {
				return fmt.Errorf("--interval %v: want a positive duration", f.interval)
			}
			path := "/conns"
			if f.state != "" {
				path += "?state=" + url.QueryEscape(f.state)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			for n := 1; ; n++ {
				var tab admin.Table
				if err := adminGet(ctx, f.admin, path, &tab); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				var buf bytes.Buffer
				if f.json {
					enc := json.NewEncoder(&buf)
					enc.SetIndent("", "  ")
					enc.Encode(tab)
				} else {
					if f.watch {
						// Home the cursor and clear the screen, as watch(1) does.
						fmt.Fprintf(&buf, "\x1b[H\x1b[2J%s  %s\n\n", f.admin, tab.Time.Format("15:04:05"))
					}
					writeTable(&buf, &tab)
				}
				if _, err := out.Write(buf.Bytes()); err != nil {
					return err
				}
				if !f.watch || f.count > 0 && n >= f.count {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(f.interval):
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.admin, "admin", "", "the admin endpoint's ADDR (host:port)")
	fl.StringVar(&f.state, "state", "", "show only connections in this state (any spelling)")
	fl.BoolVarP(&f.watch, "watch", "w", false, "refresh in place until interrupted")
	fl.DurationVar(&f.interval, "interval", time.Second, "refresh interval with --watch")
	fl.IntVar(&f.count, "count", 0, "with --watch, stop after this many refreshes (0: until interrupted)")
	fl.BoolVar(&f.json, "json", false, "print the table as JSON, for scripts")
	return cmd
}

// writeTable prints the table in columns, then the count per state.
func writeTable(w io.Writer, t *admin.Table) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "State\tRecv-Q\tSend-Q\tLocal Address:Port\tPeer Address:Port\tTimer")
	for _, c := range t.Conns {
		peer := c.Remote
		if peer == "" {
			peer = "*:*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", c.State, c.RecvQ, c.SendQ, c.Local, peer, timerText(&c))
	}
	tw.Flush()
	fmt.Fprintln(w)
	total := 0
	for _, n := range t.Counts {
		total += n
	}
	states := make([]string, 0, len(t.Counts))
	for s := range t.Counts {
		states = append(states, s)
	}
	// In the RFC's order of states.
	sort.Slice(states, func(i, j int) bool { return stateRank(states[i]) < stateRank(states[j]) })
	parts := make([]string, 0, len(states))
	for _, s := range states {
		parts = append(parts, fmt.Sprintf("%s %d", s, t.Counts[s]))
	}
	fmt.Fprintf(w, "Total: %d", total)
	if len(parts) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

func stateRank(name string) int {
	s, err := tcp.ParseState(name)
	if err != nil {
		return tcp.NumStates
	}
	return slices.Index(tcp.States[:], s)
}

// timerText writes a row's running timer as ss -o's timer:(...) does, in
// words: "retransmission 1.2s (2)", "2MSL 59s", "keepalive 1h59m".
func timerText(c *admin.Conn) string {
	if c.Timer == "" {
		return ""
	}
	s := c.Timer + " " + shortDuration(time.Duration(c.TimerLeft*float64(time.Second)))
	if c.Timer == tcp.TimerRetransmit.String() && c.Retransmits > 0 {
		s += fmt.Sprintf(" (%d)", c.Retransmits)
	}
	return s
}

// shortDuration rounds d for a table: milliseconds under ten seconds,
// seconds under an hour, minutes beyond.
func shortDuration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

func newStatsCmd() *cobra.Command {
	var (
		addr   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stats --admin ADDR [--json]",
		Short: "Print a running stack's counters (RFC 4022 TCP-MIB names)",
		Long: "stats asks a running stack's admin endpoint for its counters and prints\n" +
			"them: the TCP-MIB counters of RFC 4022 (ActiveOpens, PassiveOpens,\n" +
			"AttemptFails, EstabResets, CurrEstab, InSegs, OutSegs, RetransSegs, InErrs,\n" +
			"OutRsts), SYN cookies, drops by reason, and connections per state.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var st admin.Stats
			if err := adminGet(cmd.Context(), addr, "/stats", &st); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeStats(out, &st)
		},
	}
	cmd.Flags().StringVar(&addr, "admin", "", "the admin endpoint's ADDR (host:port)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counters as JSON")
	return cmd
}

func writeStats(w io.Writer, st *admin.Stats) error {
	bw := bufio.NewWriter(w)
	row := func(name string, v uint64) { fmt.Fprintf(bw, "    %-24s %12d\n", name, v) }
	heading := func(s string) { fmt.Fprintln(bw, s) }
	heading("Tcp (RFC 4022 TCP-MIB):")
	row("ActiveOpens", st.ActiveOpens)
	row("PassiveOpens", st.PassiveOpens)
	row("AttemptFails", st.AttemptFails)
	row("EstabResets", st.EstabResets)
	row("CurrEstab", st.CurrEstab)
	row("InSegs", st.InSegs)
	row("OutSegs", st.OutSegs)
	row("RetransSegs", st.RetransSegs)
	row("InErrs", st.InErrs)
	row("OutRsts", st.OutRsts)
	heading("SYN cookies:")
	row("sent", st.SynCookiesSent)
	row("validated", st.SynCookiesValid)
	row("failed", st.SynCookiesInvalid)
	heading("Packets and ACKs:")
	row("InPackets", st.InPackets)
	row("OutPackets", st.OutPackets)
	row("DupAcks", st.DupAcks)
	row("ICMPEchoReplies", st.ICMPEchoReplies)
	row("ICMPErrors", st.ICMPErrors)
	row("WriteErrors", st.WriteErrors)
	row("EventsDropped", st.EventsDropped)
	heading("Drops by reason:")
	reasons := make([]string, 0, len(st.Drops))
	for r := range st.Drops {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		row(r, st.Drops[r])
	}
	heading("Connections by state:")
	for _, s := range tcp.States {
		row(s.String(), uint64(st.States[s.String()]))
	}
	return bw.Flush()
}
