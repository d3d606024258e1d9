package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/internal/netns"
)

// workload is one row of the results.
type workload struct {
	name  string
	title string
	unit  string
	group string // "mem", "heap", "idle" or "tun"
	mtu   int    // mem: the link MTU

	systems []string
	// client measures the workload over dial for a duration (mem and
	// tun groups).
	client func(ctx context.Context, dial dialFunc, d time.Duration) (float64, error)

	lowerBetter bool
	targetVs    string  // the system the target ratio is against
	target      float64 // tcpstate/targetVs must be ≥ this (≤ if lowerBetter); 0: none
}

func gbits(f func(context.Context, dialFunc, time.Duration) (float64, error)) func(context.Context, dialFunc, time.Duration) (float64, error) {
	return func(ctx context.Context, dial dialFunc, d time.Duration) (float64, error) {
		v, err := f(ctx, dial, d)
		return v / 1e9, err
	}
}

func crrN(conc int) func(context.Context, dialFunc, time.Duration) (float64, error) {
	return func(ctx context.Context, dial dialFunc, d time.Duration) (float64, error) {
		return crr(ctx, dial, d, conc)
	}
}

var (
	memSystems  = []string{sysTcpstate, sysGVisor, sysKernel}
	heapSystems = []string{sysTcpstate, sysGVisor}
	tunSystems  = []string{sysTcpstate, sysGVisor, sysKernel, sysKernelNoOL}
)

// workloads, in the order they run and are reported.
var workloads = []*workload{
	{name: "mem-bulk-1500", title: "in-memory bulk, MTU 1500", unit: "Gbit/s", group: "mem", mtu: 1500,
		systems: memSystems, client: gbits(bulkSend), targetVs: sysGVisor, target: 2},
	{name: "mem-bulk-65535", title: "in-memory bulk, MTU 65535", unit: "Gbit/s", group: "mem", mtu: 65535,
		systems: memSystems, client: gbits(bulkSend), targetVs: sysKernel, target: 1},
	{name: "mem-crr-seq", title: "in-memory crr, sequential", unit: "txn/s", group: "mem", mtu: 1500,
		systems: memSystems, client: crrN(1), targetVs: sysGVisor, target: 2},
	{name: "mem-crr-64", title: "in-memory crr, 64 concurrent", unit: "txn/s", group: "mem", mtu: 1500,
		systems: memSystems, client: crrN(64), targetVs: sysGVisor, target: 2},
	{name: "heap-idle-pair", title: "Go heap per idle pair", unit: "B/pair", group: "heap",
		systems: heapSystems, lowerBetter: true, targetVs: sysGVisor, target: 0.25},
	{name: "rss-idle-pair", title: "RSS per idle pair", unit: "B/pair", group: "heap",
		systems: heapSystems, lowerBetter: true},
	{name: "tun-idle-echo", title: "RSS per idle echo connection, TUN", unit: "B/conn", group: "idle",
		systems: heapSystems, lowerBetter: true, targetVs: sysGVisor, target: 0.25},
	{name: "tun-bulk-out", title: "TUN bulk, stack → kernel", unit: "Gbit/s", group: "tun",
		systems: tunSystems, client: gbits(bulkSend), targetVs: sysGVisor, target: 2},
	{name: "tun-bulk-in", title: "TUN bulk, kernel → stack", unit: "Gbit/s", group: "tun",
		systems: tunSystems, client: gbits(bulkRecv), targetVs: sysGVisor, target: 2},
	{name: "tun-crr-seq", title: "TUN crr, sequential", unit: "txn/s", group: "tun",
		systems: tunSystems, client: crrN(1), targetVs: sysGVisor, target: 2},
	{name: "tun-crr-64", title: "TUN crr, 64 concurrent", unit: "txn/s", group: "tun",
		systems: tunSystems, client: crrN(64), targetVs: sysGVisor, target: 2},
}

func workloadByName(name string) *workload {
	for _, w := range workloads {
		if w.name == name {
			return w
		}
	}
	return nil
}

// cell is one figure of one round.
type cell struct {
	V   float64 `json:"v"`
	Err string  `json:"err,omitempty"`
}

// results holds every figure: results[workload][system][round].
type results map[string]map[string][]cell

func (r results) add(wl, sys string, round int, v float64, err error) {
	if r[wl] == nil {
		r[wl] = map[string][]cell{}
	}
	cells := r[wl][sys]
	for len(cells) <= round {
		cells = append(cells, cell{Err: "not measured"})
	}
	c := cell{V: v}
	if err != nil {
		c = cell{Err: err.Error()}
	}
	cells[round] = c
	r[wl][sys] = cells
	w := workloadByName(wl)
	if err != nil {
		fmt.Printf("round %d  %-15s %-21s error: %v\n", round+1, wl, sys, err)
	} else {
		fmt.Printf("round %d  %-15s %-21s %s %s\n", round+1, wl, sys, formatValue(v, w.unit), w.unit)
	}
}

// tunEnv is the namespaces of the veth workloads. The TUN workloads get a
// fresh namespace for each child (see inFreshNS).
type tunEnv struct {
	a, b     *netns.NS // veth: the kernel client in a, its peer in b
	stopPeer func()
}

const (
	vethA     = "bva"
	vethB     = "bvb"
	vethAAddr = "10.66.0.1"
	vethBAddr = "10.66.0.2"
)

// newTunEnv makes the namespaces and the veth pair and starts the kernel
// peer in b. Close removes everything.
func newTunEnv(ctx context.Context) (*tunEnv, error) {
	e := &tunEnv{}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	var err error
	for _, p := range []**netns.NS{&e.a, &e.b} {
		if *p, err = netns.New(); err != nil {
			return nil, err
		}
	}
	steps := []struct {
		ns   *netns.NS
		args []string
	}{
		{e.a, []string{"ip", "link", "add", vethA, "type", "veth", "peer", "name", vethB, "netns", e.b.Name()}},
		{e.a, []string{"ip", "addr", "add", vethAAddr + "/24", "dev", vethA}},
		{e.a, []string{"ip", "link", "set", vethA, "up"}},
		{e.b, []string{"ip", "addr", "add", vethBAddr + "/24", "dev", vethB}},
		{e.b, []string{"ip", "link", "set", vethB, "up"}},
		// The kernel client gets the same wide port range as the stacks,
		// and may reuse a TIME-WAIT port for a new connection.
		{e.a, []string{"sysctl", "-q", "-w", fmt.Sprintf("net.ipv4.ip_local_port_range=%d %d", ephemeral[0], ephemeral[1])}},
		{e.a, []string{"sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"}},
	}
	for _, s := range steps {
		if _, err := s.ns.Run(s.args[0], s.args[1:]...); err != nil {
			return nil, err
		}
	}
	if e.stopPeer, err = startPeer(ctx, e.b.Name(), vethBAddr); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

// offloads turns the veth pair's offloads on or off (ethtool -K).
// Features a device cannot change are left as they are.
func (e *tunEnv) offloads(on bool) error {
	v := "off"
	if on {
		v = "on"
	}
	for _, x := range []struct {
		ns  *netns.NS
		dev string
	}{{e.a, vethA}, {e.b, vethB}} {
		args := []string{"-K", x.dev}
		for _, f := range []string{"rx", "tx", "sg", "tso", "gso", "gro"} {
			args = append(args, f, v)
		}
		if out, err := x.ns.Run("ethtool", args...); err != nil && !strings.Contains(out, "Could not change") {
			return err
		}
	}
	return nil
}

// Close stops the peer and deletes the namespaces (with them the veth
// pair and any TUN device left).
func (e *tunEnv) Close() {
	if e.stopPeer != nil {
		e.stopPeer()
	}
	for _, ns := range []*netns.NS{e.a, e.b} {
		if ns != nil {
			if err := ns.Delete(); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}
	}
}

// inFreshNS runs f with the name of a new namespace and deletes the
// namespace afterwards. Each TUN child gets its own, so that no stack
// meets the TIME-WAIT connections another stack (or an earlier round)
// left in the kernel peer.
func inFreshNS(f func(ns string) error) error {
	ns, err := netns.New()
	if err != nil {
		return err
	}
	defer func() {
		if err := ns.Delete(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
	}()
	return f(ns.Name())
}

// run runs every selected workload for o.rounds rounds, then the
// profiles, and writes the reports.
func run(ctx context.Context, o options) error {
	var sel []*workload
	groups := map[string]bool{}
	for _, w := range workloads {
		if o.only.MatchString(w.name) {
			sel = append(sel, w)
			groups[w.group] = true
		}
	}
	if len(sel) == 0 {
		return fmt.Errorf("-only %q matches no workload", o.only)
	}
	var env *tunEnv
	skipTun := ""
	if groups["tun"] || groups["idle"] {
		if err := netns.Available(); err != nil {
			skipTun = err.Error()
		} else if _, err := os.Stat("/dev/net/tun"); err != nil {
			skipTun = "no /dev/net/tun: " + err.Error()
		} else if groups["tun"] {
			var err error
			if env, err = newTunEnv(ctx); err != nil {
				return fmt.Errorf("TUN and veth setup: %w", err)
			}
			defer env.Close()
		}
		if skipTun != "" {
			fmt.Printf("skipping the TUN and veth workloads: %s\n", skipTun)
		}
	}
	if groups["idle"] && skipTun == "" {
		dir, err := os.MkdirTemp("", "tcpstate-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.serve, err = buildTcpstate(ctx, dir); err != nil {
			return err
		}
	}
	fmt.Printf("bench: %d rounds, %v per measurement, %s\n", o.rounds, o.dur, machine())
	res := results{}
	start := time.Now()
	for round := 0; round < o.rounds; round++ {
		fmt.Printf("-- round %d of %d (%s)\n", round+1, o.rounds, loadavg())
		if err := runRound(ctx, o, sel, env, res, round); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	rep := buildReport(o, sel, res, skipTun, elapsed)
	if err := rep.write(o.out); err != nil {
		return err
	}
	fmt.Println()
	fmt.Print(rep.text())
	if o.profile != "" {
		if err := profileAll(ctx, o, sel, env); err != nil {
			return fmt.Errorf("profiles: %w", err)
		}
	}
	return ctx.Err()
}

func runRound(ctx context.Context, o options, sel []*workload, env *tunEnv, res results, round int) error {
	heapDone := false
	var tunNames []string
	for _, w := range sel {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch w.group {
		case "mem":
			for _, sys := range w.systems {
				v, err := measureMem(ctx, w, sys, o.dur, "")
				res.add(w.name, sys, round, v, err)
			}
		case "heap":
			if heapDone {
				continue
			}
			heapDone = true
			for _, sys := range w.systems {
				var hr heapResult
				err := runChild(ctx, 2*time.Minute, &hr, "", "-child", "heap", "-system", sys, "-n", fmt.Sprint(o.pairs))
				for _, hw := range sel {
					switch hw.name {
					case "heap-idle-pair":
						res.add(hw.name, sys, round, hr.HeapPerPair, err)
					case "rss-idle-pair":
						res.add(hw.name, sys, round, hr.RSSPerPair, err)
					}
				}
			}
		case "idle":
			if o.serve == "" {
				continue // no namespaces or no TUN: skipped
			}
			for _, sys := range w.systems {
				var ir idleResult
				err := inFreshNS(func(ns string) error {
					return runChild(ctx, 2*time.Minute, &ir, ns, "-child", "idle", "-system", sys,
						"-serve", o.serve, "-conns", fmt.Sprint(o.conns))
				})
				res.add(w.name, sys, round, ir.RSSPerConn, err)
			}
		case "tun":
			if env != nil {
				tunNames = append(tunNames, w.name)
			}
		}
	}
	if len(tunNames) == 0 {
		return nil
	}
	limit := time.Duration(len(tunNames))*(o.dur+2*ioTimeout) + 30*time.Second
	args := []string{"-child", "client", "-workloads", strings.Join(tunNames, ","), "-dur", o.dur.String(), fmt.Sprintf("-v=%v", verbose), fmt.Sprintf("-tunqueues=%d", tunQueues)}
	for _, sys := range tunSystems {
		if err := ctx.Err(); err != nil {
			return err
		}
		a := append([]string(nil), args...)
		got := map[string]childResult{}
		var err error
		switch sys {
		case sysKernel, sysKernelNoOL:
			if err := env.offloads(sys == sysKernel); err != nil {
				return fmt.Errorf("ethtool: %w", err)
			}
			a = append(a, "-system", sysKernel, "-target", vethBAddr)
			err = runChild(ctx, limit, &got, env.a.Name(), a...)
		default:
			a = append(a, "-system", sys)
			err = inFreshNS(func(ns string) error { return runChild(ctx, limit, &got, ns, a...) })
		}
		for _, name := range tunNames {
			r, ok := got[name]
			switch {
			case err != nil:
				res.add(name, sys, round, 0, err)
			case !ok:
				res.add(name, sys, round, 0, fmt.Errorf("the child did not report it"))
			case r.Err != "":
				res.add(name, sys, round, 0, fmt.Errorf("%s", r.Err))
			default:
				res.add(name, sys, round, r.Value, nil)
			}
		}
	}
	return nil
}

// measureMem runs one in-memory workload on fresh stacks of sys. With a
// profile prefix, it profiles the measurement.
func measureMem(ctx context.Context, w *workload, sys string, d time.Duration, profile string) (float64, error) {
	s, err := memSetup(sys, w.mtu)
	if err != nil {
		return 0, err
	}
	defer s.close()
	var prof *profiler
	if profile != "" {
		if prof, err = startProfile(profile); err != nil {
			return 0, err
		}
	}
	v, err := w.client(ctx, s.dial, d)
	if prof != nil {
		if perr := prof.stop(); perr != nil && err == nil {
			err = perr
		}
	}
	return v, err
}

// profileAll runs each selected workload once more on tcpstate alone,
// with a CPU profile and allocation profiles, into o.profile.
func profileAll(ctx context.Context, o options, sel []*workload, env *tunEnv) error {
	dir, err := filepath.Abs(o.profile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Printf("\nprofiling tcpstate into %s\n", dir)
	var tunNames []string
	for _, w := range sel {
		prefix := filepath.Join(dir, sysTcpstate+"-"+w.name)
		switch w.group {
		case "mem":
			v, err := measureMem(ctx, w, sysTcpstate, o.dur, prefix)
			if err != nil {
				fmt.Printf("  %s: %v\n", w.name, err)
				continue
			}
			fmt.Printf("  %s: %s %s, %s.{cpu,allocs}.pprof\n", w.name, formatValue(v, w.unit), w.unit, prefix)
		case "heap":
			if w.name != "heap-idle-pair" {
				continue
			}
			var hr heapResult
			if err := runChild(ctx, 2*time.Minute, &hr, "", "-child", "heap", "-system", sysTcpstate,
				"-n", fmt.Sprint(o.pairs), "-profile", filepath.Join(dir, sysTcpstate)); err != nil {
				fmt.Printf("  %s: %v\n", w.name, err)
				continue
			}
			fmt.Printf("  %s: %.0f B/pair, %s\n", w.name, hr.HeapPerPair, filepath.Join(dir, sysTcpstate+"-heap.inuse.pprof"))
		case "tun":
			if env != nil {
				tunNames = append(tunNames, w.name)
			}
		}
	}
	if len(tunNames) > 0 {
		got := map[string]childResult{}
		limit := time.Duration(len(tunNames))*(o.dur+2*ioTimeout) + 30*time.Second
		if err := inFreshNS(func(ns string) error {
			return runChild(ctx, limit, &got, ns, "-child", "client", "-system", sysTcpstate,
				"-workloads", strings.Join(tunNames, ","), "-dur", o.dur.String(),
				"-profile", filepath.Join(dir, sysTcpstate))
		}); err != nil {
			return err
		}
		for _, name := range tunNames {
			fmt.Printf("  %s: %s %s, %s.{cpu,allocs}.pprof\n", name, formatValue(got[name].Value, workloadByName(name).unit),
				workloadByName(name).unit, filepath.Join(dir, sysTcpstate+"-"+name))
		}
	}
	fmt.Println("read them with: go tool pprof -top FILE.cpu.pprof; go tool pprof -top -sample_index=alloc_space -base FILE.allocs-before.pprof FILE.allocs.pprof")
	return nil
}

// machine describes where the run happens.
func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d CPUs, host %s", numCPU(), host)
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load unknown"
	}
	return "load " + strings.Join(f[:3], " ")
}
