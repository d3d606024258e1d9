// Package capture reads TCP segments from packet captures, for the
// passive tracker (`tcpstate track`) that applies the TCP state model to
// captured traffic.
//
// Open reads a capture file: classic pcap with microsecond or nanosecond
// timestamps in either byte order, or pcapng with any if_tsresol and a
// link type per interface, either optionally gzip-compressed. OpenLive
// captures from a network interface through an AF_PACKET socket (Linux,
// root or CAP_NET_RAW). Both give a Reader whose Next returns one TCP
// segment at a time as a compact Packet: addresses, ports, flags,
// sequence and acknowledgment numbers, window, payload length, options.
//
// Decoding is lenient where captures need it and strict where it must be.
// Only the IP and TCP headers need to have been captured, so a
// headers-only snap length (tcpdump -s 96) decodes; the payload length
// comes from the IP header, not the captured bytes; checksums are not
// checked, since captures taken on the sending host hold the
// not-yet-offloaded ones. Link layers: Ethernet with any number of
// 802.1Q/802.1ad VLAN tags, Linux cooked capture v1 and v2, raw IP, IPv4
// and IPv6. IPv6 extension headers are walked; IP fragments other than
// the first, which hold no TCP header, are skipped. Every frame that is
// not returned is counted in Stats (non-TCP, fragment, or malformed by
// reason): nothing is dropped silently, and no input makes the package
// panic.
//
// The pcap and pcapng parsers are this package's own rather than
// gopacket's pcapgo: pcapgo's link type is a uint8, which cannot hold
// LINKTYPE_LINUX_SLL2 (276), and its readers trust length fields a
// corrupt file can make them allocate gigabytes for or divide by zero
// with (if_tsresol 2^-64). The tests cross-check these parsers against
// files that pcapgo writes.
//
// In the steady state reading a packet allocates nothing: the Reader
// reuses one buffer and one Packet.
package capture
