package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tcpstate/tcpstate/demo"
	"github.com/tcpstate/tcpstate/trace"
)

type demoFlags struct {
	list   bool
	format string
	seed   uint64
	width  int
	trace  string
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo [NAME...]",
		Short: "Play the TCP state diagram's scenarios as ladder diagrams",
		Long: "demo plays the article's scenarios (the handshake, the four-segment close,\n" +
			"TIME-WAIT, CLOSING, the old duplicate SYN, ...) between two simulated hosts\n" +
			"and draws each as a ladder diagram, or prints its events as JSON lines.\n" +
			"With no NAME it plays them all, in order; --list names them.",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.OutOrStdout(), args, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.list, "list", "l", false, "list the scenarios with their titles")
	fl.StringVarP(&f.format, "format", "f", "text", "output format: text (ladder diagrams) or json (JSON lines of events)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the simulation's randomness (only the lossy scenario depends on it)")
	fl.IntVar(&f.width, "width", 100, "width of the text output in columns")
	fl.StringVar(&f.trace, "trace", "", "also write every event of the scenarios played to FILE as JSON lines (read it with tcpstate ladder)")
	return cmd
}

func runDemo(out io.Writer, names []string, f demoFlags) (err error) {
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("unknown format %q (want text or json)", f.format)
	}
	if f.width < 80 {
		return fmt.Errorf("width %d is too narrow (want at least 80)", f.width)
	}
	bw := bufio.NewWriter(out)
	if f.list {
		for _, s := range demo.Scenarios() {
			fmt.Fprintf(bw, "%-20s %s\n", s.Name, s.Title)
		}
		return bw.Flush()
	}
	var scenarios []*demo.Scenario
	for _, name := range names {
		s, err := demo.Lookup(name)
		if err != nil {
			return err
		}
		scenarios = append(scenarios, s)
	}
	if len(scenarios) == 0 {
		scenarios = demo.Scenarios()
	}
	var traceOut *trace.JSONWriter
	if f.trace != "" {
		file, err := os.Create(f.trace)
		if err != nil {
			return fmt.Errorf("--trace: %w", err)
		}
		tw := bufio.NewWriter(file)
		traceOut = trace.NewJSONWriter(tw)
		defer func() {
			if ferr := tw.Flush(); err == nil && ferr != nil {
				err = fmt.Errorf("--trace %s: %w", f.trace, ferr)
			}
			if cerr := file.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("--trace %s: %w", f.trace, cerr)
			}
		}()
	}
	for i, s := range scenarios {
		var sink trace.Sink
		if traceOut != nil {
			sink = traceOut
		}
		switch f.format {
		case "json":
			j := trace.NewJSONWriter(bw)
			s.Run(demo.Options{Seed: f.seed, Sink: trace.Tee(j, sink)})
			if err := j.Err(); err != nil {
				return err
			}
		default:
			if i > 0 {
				fmt.Fprintln(bw)
			}
			r := s.Run(demo.Options{Seed: f.seed, Sink: sink})
			if err := r.WriteText(bw, f.width); err != nil {
				return err
			}
		}
	}
	if traceOut != nil && traceOut.Err() != nil {
		return fmt.Errorf("--trace %s: %w", f.trace, traceOut.Err())
	}
	return bw.Flush()
}
