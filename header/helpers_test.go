package header

import "net/netip"

func netipv4(last byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, last}) }
