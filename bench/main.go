// Command bench measures tcpstate side by side with gVisor's netstack and
// the Linux kernel, on the same machine in one run: bulk throughput and
// connect-request-response over each stack's own in-memory link (the
// kernel over loopback), the Go heap each idle connection pair costs, and
// bulk and crr over a TUN device with a kernel peer in a network
// namespace (the kernel over a veth pair, offloads on and off, as the
// ceiling). It runs several rounds, takes the ratios within each round,
// and writes the figures as JSON, a Markdown table and an SVG chart.
//
//	cd bench && sudo go run . -out results.json
//
// Flags: -rounds N, -dur D (each measurement), -only REGEXP (workloads),
// -quick (a short smoke run), -profile DIR (CPU and heap profiles of
// tcpstate in each workload), -n N (pairs for the heap workload), -v
// (tcpstate's counters after each TUN workload), -conns N (connections
// of tun-idle-echo, which runs the tcpstate command built from
// ../cmd/tcpstate), -redraw (the table and
// chart again from the JSON). The
// TUN and veth workloads need root; without it they are skipped with a
// message. Namespaces and child processes are removed at the end, on
// error and on Ctrl-C.
//
// It lives in its own module so that the main module never depends on
// gVisor.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// verbose is -v; children inherit it.
var verbose bool

// tunQueues is -tunqueues; client children inherit it.
var tunQueues int

type options struct {
	rounds  int
	dur     time.Duration
	only    *regexp.Regexp
	quick   bool
	out     string
	profile string
	pairs   int
	conns   int
	serve   string // the tcpstate binary of tun-idle-echo, built by run
}

func main() {
	var (
		child   = flag.String("child", "", "internal: run as a child process (client, peer, heap)")
		system  = flag.String("system", "", "internal: the system a child measures")
		wls     = flag.String("workloads", "", "internal: the workloads a client child runs, comma-separated")
		target  = flag.String("target", "", "internal: the kernel peer a client child dials")
		bind    = flag.String("bind", "", "internal: the address a peer child serves on")
		rounds  = flag.Int("rounds", 5, "rounds of every workload; ratios are taken within each round")
		dur     = flag.Duration("dur", 2*time.Second, "length of each measurement")
		only    = flag.String("only", "", "run only the workloads whose names match this regular expression")
		quick   = flag.Bool("quick", false, "a short smoke run: one round, short measurements, fewer pairs")
		out     = flag.String("out", "results.json", "the JSON results file; the .md table and .svg chart go next to it")
		profile = flag.String("profile", "", "after the rounds, profile tcpstate in each workload into this directory")
		pairs   = flag.Int("n", 2000, "connection pairs for the heap-per-idle-pair workload")
		conns   = flag.Int("conns", 2000, "kernel connections to the echo server in the tun-idle-echo workload")
		serve   = flag.String("serve", "", "internal: the tcpstate binary an idle child runs")
	)
	redrawOnly := flag.Bool("redraw", false, "write the .md table and .svg chart again from the -out JSON file, without measuring")
	flag.IntVar(&tunQueues, "tunqueues", 1, "TUN queues tcpstate opens (IFF_MULTI_QUEUE above 1), each read on its own goroutine")
	flag.BoolVar(&verbose, "v", false, "print the userspace stack's counters after each TUN workload")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch *child {
	case "":
	case "client":
		err = childClient(ctx, *system, strings.Split(*wls, ","), *target, *dur, *profile)
	case "peer":
		err = childPeer(ctx, *bind)
	case "heap":
		err = childHeap(ctx, *system, *pairs, *profile)
	case "idle":
		err = childIdle(ctx, *system, *serve, *conns)
	case "gvecho":
		err = childGVisorEcho(ctx)
	default:
		err = fmt.Errorf("unknown child mode %q", *child)
	}
	if *child != "" {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}

	if *redrawOnly {
		if err := redraw(*out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}

	o := options{rounds: *rounds, dur: *dur, quick: *quick, out: *out, profile: *profile, pairs: *pairs, conns: *conns}
	if *quick {
		o.rounds = 1
		o.dur = 300 * time.Millisecond
		o.pairs = 200
	}
	if o.rounds < 1 || o.dur <= 0 || o.pairs < 1 || o.conns < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds, -dur, -n and -conns must be positive")
		os.Exit(2)
	}
	if o.only, err = regexp.Compile(*only); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -only:", err)
		os.Exit(2)
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}
