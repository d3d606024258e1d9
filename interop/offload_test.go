//go:build linux

package interop

// offloadModes are the ways `tcpstate serve` and `dial` can use their
// TUN device, which the main transfer tests run in turn: with the
// kernel's offloads (the default: 64 KiB TCP segments cross the device,
// checksums left to the kernel) and without (--no-offload: MTU-sized
// packets, checksums computed by tcpstate); and with BBR, whose pacing
// spreads the segments out, over the offload path.
var offloadModes = []struct {
	name string
	args []string
}{
	{"offload", nil},
	{"plain", []string{"--no-offload"}},
	// And BBR, with its pacing, over the offload path.
	{"bbr", []string{"--cc", "bbr"}},
}
