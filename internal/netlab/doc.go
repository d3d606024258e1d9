// Package netlab builds a small Linux network in three network namespaces
// (client, router, server joined by veth pairs), makes real TCP situations
// with kernel sockets, captures the traffic in the router, and records the
// kernel's own view of each situation when the capture ends: the endpoint
// states from ss(8) in the client and server, the router's conntrack table,
// and each side's retransmission counter. It is the ground truth that a
// passive tracker (tcpstate track) is compared against.
//
// A comparison test for a tracker runs each scenario in its own lab and
// checks the tracker's verdict on the capture against the kernel's:
//
//	for _, sc := range netlab.Scenarios {
//		t.Run(sc.Name, func(t *testing.T) {
//			t.Parallel()
//			r := sc.Run(netlab.New(t), t)
//			for _, conn := range track(r.Pcap) { // the tracker's connections
//				if got, want := conn.ClientState, r.ClientState(conn.Client, conn.Server); got != want { ... }
//				if got, want := conn.ServerState, r.ServerState(conn.Client, conn.Server); got != want { ... }
//				if e, ok := r.ConntrackEntry(conn.Client, conn.Server); ok && conn.Conntrack != e.State { ... }
//			}
//			// and the retransmissions it counted against r.RetransClient and r.RetransServer
//		})
//	}
//
// ClientState and ServerState give tcp.Closed for a connection the
// kernel no longer has. The capture is taken on the router's interface
// toward the server; losses are made by the receiving endpoint, so every
// packet the router's conntrack saw is in it.
//
// Everything here needs root, network namespaces and the tools ip, ss,
// iptables, ip6tables, ethtool, tcpdump and conntrack (hping3 for the SYN
// flood). New skips the test when they are missing, unless the environment
// variable CI is "true", where it fails instead.
package netlab
