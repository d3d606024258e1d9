package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/trace"
)

type diagramFlags struct {
	format string
	trace  string
	admin  string
	out    string
}

func newDiagramCmd() *cobra.Command {
	var f diagramFlags
	cmd := &cobra.Command{
		Use:   "diagram",
		Short: "Draw the TCP state diagram (RFC 9293 Figure 5), with counts of transitions taken",
		Long: "diagram draws the connection state diagram of RFC 9293 Figure 5 with every\n" +
			"transition tcpstate implements, as SVG or as Graphviz DOT. With --trace FILE it\n" +
			"counts the state changes in a JSON-lines trace; with --admin ADDR it asks a\n" +
			"running stack's admin endpoint (GET http://ADDR/transitions); each edge then\n" +
			"shows how often it was taken.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiagram(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "svg", "output format: svg or dot")
	fl.StringVar(&f.trace, "trace", "", "count the transitions in this JSON-lines trace")
	fl.StringVar(&f.admin, "admin", "", "count the transitions a running stack reports at http://ADDR/transitions")
	fl.StringVarP(&f.out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

func runDiagram(ctx context.Context, stdout io.Writer, f diagramFlags) error {
	if f.format != "svg" && f.format != "dot" {
		return fmt.Errorf("unknown format %q (want svg or dot)", f.format)
	}
	if f.trace != "" && f.admin != "" {
		return fmt.Errorf("--trace and --admin: give one")
	}
	var counts map[trace.DiagramKey]uint64
	opt := trace.DiagramOptions{}
	switch {
	case f.trace != "":
		file, err := os.Open(f.trace)
		if err != nil {
			return err
		}
		recs, err := trace.ReadJSON(file)
		file.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.trace, err)
		}
		counts = trace.CountTransitions(recs)
		opt.Title = "TCP state diagram (RFC 9293, Figure 5): transitions in " + f.trace
	case f.admin != "":
		if ctx == nil {
			ctx = context.Background()
		}
		c, err := fetchTransitions(ctx, f.admin)
		if err != nil {
			return err
		}
		counts = c
		opt.Title = "TCP state diagram (RFC 9293, Figure 5): transitions at " + f.admin
	}
	var buf bytes.Buffer
	var err error
	if f.format == "dot" {
		err = trace.DiagramDOT(&buf, counts, opt)
	} else {
		err = trace.DiagramSVG(&buf, counts, opt)
	}
	if err != nil {
		return err
	}
	return writeOut(stdout, f.out, buf.Bytes())
}

// transitionJSON is one element of the admin endpoint's /transitions
// answer: [{"from":"SYN-SENT","to":"ESTABLISHED","cause":"rcv SYN,ACK","count":3}].
type transitionJSON struct {
	From  tcp.State `json:"from"`
	To    tcp.State `json:"to"`
	Cause string    `json:"cause"`
	Count uint64    `json:"count"`
}

// fetchTransitions asks a running stack's admin endpoint for its
// transition counts. A cause it cannot classify is counted under
// trace.UnknownTrigger, so it is still shown.
func fetchTransitions(ctx context.Context, addr string) (map[trace.DiagramKey]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "http://" + addr + "/transitions"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--admin %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var list []transitionJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	counts := map[trace.DiagramKey]uint64{}
	for _, t := range list {
		trig, _ := trace.ParseCause(t.From, t.To, t.Cause)
		counts[trace.DiagramKey{From: t.From, To: t.To, Trigger: trig}] += t.Count
	}
	return counts, nil
}
