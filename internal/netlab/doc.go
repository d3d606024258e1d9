// Package netlab builds a small Linux network in three network namespaces
// (client, router, server joined by veth pairs), makes real TCP situations
// with kernel sockets, captures the traffic in the router, and records the
// kernel's own view of each situation when the capture ends: the endpoint
// states from ss(8) in the client and server, the router's conntrack table,
// and each side's retransmission counter. It is the ground truth that a
// passive tracker (tcpstate track) is compared against.
//
// Everything here needs root, network namespaces and the tools ip, ss,
// iptables, ip6tables, ethtool, tcpdump and conntrack (hping3 for the SYN
// flood). New skips the test when they are missing, unless the environment
// variable CI is "true", where it fails instead.
package netlab
