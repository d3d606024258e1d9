package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

type ladderFlags struct {
	conn   string
	format string
	width  int
	out    string
}

func newLadderCmd() *cobra.Command {
	var f ladderFlags
	cmd := &cobra.Command{
		Use:   "ladder FILE",
		Short: "Draw a JSON-lines trace as ladder diagrams, in text or SVG",
		Long: "ladder reads a trace of JSON lines (tcpstate demo --format json, or a running\n" +
			"stack's --trace) and draws each connection as a ladder diagram. A demo's trace\n" +
			"has both hosts and is drawn as the demo draws it, one run at a time; a stack's\n" +
			"trace has one host, and each connection is drawn with its peer added (state\n" +
			"unknown). --conn LOCAL-REMOTE (\"10.0.0.1:1234-10.0.0.2:80\", either order, or\n" +
			"with ->) draws only that connection.\n\n" +
			"Text draws every connection in turn under a heading. SVG draws one connection\n" +
			"per image: with several and no --conn, -o OUT.svg writes OUT-1.svg, OUT-2.svg,\n" +
			"... (the names are printed); to stdout it asks for --conn.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLadder(cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.conn, "conn", "", "draw only this connection: LOCAL-REMOTE, e.g. 10.0.0.1:1234-10.0.0.2:80")
	fl.StringVarP(&f.format, "format", "f", "text", "output format: text or svg")
	fl.IntVar(&f.width, "width", 100, "width of the text output in columns")
	fl.StringVarP(&f.out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

// ladderUnit is one diagram: a title and the records to draw.
type ladderUnit struct {
	title string
	recs  []trace.Record
	conns []tcp.Tuple // the connections drawn, as the records spell them
}

func runLadder(stdout io.Writer, path string, f ladderFlags) error {
	if f.format != "text" && f.format != "svg" {
		return fmt.Errorf("unknown format %q (want text or svg)", f.format)
	}
	if f.width < 80 {
		return fmt.Errorf("width %d is too narrow (want at least 80)", f.width)
	}
	var want *tcp.Tuple
	if f.conn != "" {
		t, err := parseConnFlag(f.conn)
		if err != nil {
			return err
		}
		want = &t
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	recs, err := trace.ReadJSON(file)
	file.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	units, all := ladderUnits(recs, want)
	if want != nil && len(units) == 0 {
		return fmt.Errorf("no connection %s in %s; it has: %s", f.conn, path, tupleList(all))
	}
	if len(units) == 0 {
		return fmt.Errorf("%s: no connection to draw", path)
	}

	if f.format == "svg" {
		return writeSVGs(stdout, units, f.out, all)
	}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	for i, u := range units {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		head := "== " + u.title + " "
		fmt.Fprintf(bw, "%s%s\n\n", head, strings.Repeat("=", max(f.width-len(head), 3)))
		if err := trace.Ladder(bw, u.recs, trace.LadderOptions{Width: f.width}); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return writeOut(stdout, f.out, buf.Bytes())
}

// ladderUnits splits recs into the diagrams to draw: for each run (the
// Run field; a stack's trace has one, unnamed), the whole run when two
// hosts report in it (a demo), else one diagram per connection with the
// peer added. want, when set, keeps only the connection it names, in
// either direction. all lists every connection seen, for error messages.
func ladderUnits(recs []trace.Record, want *tcp.Tuple) (units []ladderUnit, all []tcp.Tuple) {
	var runs []string
	byRun := map[string][]trace.Record{}
	for _, r := range recs {
		if _, ok := byRun[r.Run]; !ok {
			runs = append(runs, r.Run)
		}
		byRun[r.Run] = append(byRun[r.Run], r)
	}
	for _, run := range runs {
		rr := byRun[run]
		hosts := map[string]bool{}
		for i := range rr {
			if rr[i].HasState {
				hosts[rr[i].Host] = true
			}
		}
		conns := trace.Conns(rr)
		all = append(all, conns...)
		match := func(c tcp.Tuple) bool {
			return want == nil || c == *want || c == trace.Reverse(*want)
		}
		if len(hosts) >= 2 {
			title := run
			if title == "" {
				title = "trace"
			}
			if want == nil {
				units = append(units, ladderUnit{title: title, recs: rr, conns: conns})
				continue
			}
			for _, c := range conns {
				if match(c) {
					units = append(units, ladderUnit{title: title + " " + c.String(), recs: trace.ForConn(rr, c), conns: []tcp.Tuple{c}})
					break
				}
			}
			continue
		}
		for _, c := range conns {
			if !match(c) {
				continue
			}
			title := c.String()
			if run != "" {
				title = run + " " + title
			}
			units = append(units, ladderUnit{title: title, recs: trace.WithPeer(trace.ForConn(rr, c)), conns: []tcp.Tuple{c}})
		}
	}
	return units, all
}

// writeSVGs writes one SVG per unit: to out, or stdout, when there is one;
// to out's name numbered when there are several.
func writeSVGs(stdout io.Writer, units []ladderUnit, out string, all []tcp.Tuple) error {
	draw := func(u ladderUnit) ([]byte, error) {
		var b bytes.Buffer
		err := trace.LadderSVG(&b, u.recs, trace.LadderOptions{})
		return b.Bytes(), err
	}
	if len(units) == 1 {
		b, err := draw(units[0])
		if err != nil {
			return err
		}
		return writeOut(stdout, out, b)
	}
	if out == "" || out == "-" {
		return fmt.Errorf("%d diagrams to draw and SVG holds one: name one with --conn (%s), or give -o OUT.svg to write OUT-1.svg, OUT-2.svg and so on", len(units), tupleList(all))
	}
	base := strings.TrimSuffix(out, ".svg")
	for i, u := range units {
		b, err := draw(u)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s-%d.svg", base, i+1)
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\n", name, u.title)
	}
	return nil
}

// writeOut writes b to the file out, or to stdout when out is "" or "-".
func writeOut(stdout io.Writer, out string, b []byte) error {
	if out == "" || out == "-" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// parseConnFlag reads a 4-tuple as LOCAL-REMOTE ("10.0.0.1:1234-10.0.0.2:80",
// "[2001:db8::1]:1234-[2001:db8::2]:80") or LOCAL->REMOTE, as trace's JSON
// spells it. Neither an IPv4 address nor a bracketed IPv6 one holds a '-',
// so the first '-' separates the two ends.
func parseConnFlag(s string) (tcp.Tuple, error) {
	l, r, ok := strings.Cut(s, "->")
	if !ok {
		l, r, ok = strings.Cut(s, "-")
	}
	if !ok {
		return tcp.Tuple{}, fmt.Errorf("--conn %q: want LOCAL-REMOTE, e.g. 10.0.0.1:1234-10.0.0.2:80", s)
	}
	a, err := netip.ParseAddrPort(strings.TrimSpace(l))
	if err != nil {
		return tcp.Tuple{}, fmt.Errorf("--conn %q: %w", s, err)
	}
	b, err := netip.ParseAddrPort(strings.TrimSpace(r))
	if err != nil {
		return tcp.Tuple{}, fmt.Errorf("--conn %q: %w", s, err)
	}
	return tcp.Tuple{Local: a, Remote: b}, nil
}

func tupleList(ts []tcp.Tuple) string {
	if len(ts) == 0 {
		return "none"
	}
	var s []string
	seen := map[tcp.Tuple]bool{}
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			s = append(s, t.Local.String()+"-"+t.Remote.String())
		}
	}
	return strings.Join(s, ", ")
}
