// Command gencap writes a deterministic synthetic TCP capture (see package
// tracktest) for benchmarking `tcpstate track`:
//
//	go run ./track/tracktest/gencap -packets 2000000 -seed 1 -o /tmp/big.pcap
//
// It prints what it wrote (packets, connections, kinds) on stderr.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tcpstate/tcpstate/track/tracktest"
)

func main() {
	var cfg tracktest.Config
	out := flag.String("o", "", "output file (default stdout)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed: the same seed gives the same capture")
	flag.IntVar(&cfg.Packets, "packets", 2_000_000, "packets to write at least")
	flag.Float64Var(&cfg.Rate, "rate", 2000, "new connections per second of capture time")
	flag.Float64Var(&cfg.IPv6, "ipv6", 0.1, "share of connections over IPv6")
	flag.IntVar(&cfg.SnapLen, "snaplen", 128, "snap length")
	flag.Parse()
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gencap:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	st, err := tracktest.Write(w, cfg)
	if err == nil && w != os.Stdout {
		err = w.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencap:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gencap: %d packets, %d connections (%d IPv6, %d refused, %d aborted, %d left open, %d mid-stream), %d retransmissions, %d bytes, %v of capture\n",
		st.Packets, st.Conns, st.IPv6, st.Refused, st.Aborted, st.LeftOpen, st.MidStream, st.Retransmissions, st.Bytes, st.Last.Sub(st.First))
}
