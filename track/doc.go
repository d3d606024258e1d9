// Package track is the passive tracker behind `tcpstate track`: it applies
// the TCP state model to traffic seen on a wire (a capture file or a live
// interface) and says, for every TCP connection, what each endpoint's RFC
// 9293 state is, what Linux conntrack and IPVS would hold for it, what
// Zeek would log, and what looks wrong.
//
// A Tracker is fed capture.Packets in timestamp order (Feed). It keeps a
// flow table keyed by the unordered 4-tuple; each flow holds the
// incarnations of connections on that tuple (a new one starts when a SYN
// opens a new connection after the previous one ended, or reopens a
// TIME-WAIT one with a higher sequence number, RFC 9293 §3.6.1 and RFC
// 6191), and the middlebox models of track/conntrack, track/ipvs and
// track/zeek. Snapshot(at) gives the view at an instant.
//
// # Which side is the client
//
// The client is the endpoint that sent the first SYN (without ACK). For a
// connection picked up mid-stream, whose first packet is not a SYN, the
// endpoint with the higher port is the client, as ephemeral ports are the
// high ones; on equal ports, the sender of the first packet.
//
// # Known and believed states
//
// The tracker sits between the endpoints. A packet it sees has left its
// sender, so what the sender did to send it is known. Whether the packet
// reaches the receiver is not: it can be lost after the capture point.
// Each endpoint therefore has a list of pending deliveries: the packets
// from its peer that would change its state (a SYN, a FIN, an RST, an ACK
// of its SYN or FIN). A pending delivery is proven when the endpoint later
// sends an acknowledgment covering it (and so are the deliveries before
// it, TCP being in order), and disproven when the endpoint retransmits
// what the pending ACK acknowledged: a FIN retransmitted after the peer's
// ACK of it was seen means that ACK was lost, and the FIN's sender is
// still in LAST-ACK, CLOSING or FIN-WAIT-1. The proven state applies only
// proven deliveries; the believed state (what the views report) applies the
// pending ones too, as if every packet seen arrived. A packet sent by an
// endpoint that does not acknowledge a pending SYN or FIN shows the two
// crossed: its sender sent it before that SYN or FIN arrived, which is
// how simultaneous open and simultaneous close (CLOSING) are recognised.
//
// # Endpoint state inference (RFC 9293 §3.3.2, Figure 5; §3.10.7)
//
//   - sending a SYN: CLOSED -> SYN-SENT (active OPEN); the receiver of a
//     connection's first SYN is taken to be in LISTEN;
//   - receiving a SYN: LISTEN -> SYN-RECEIVED; SYN-SENT -> SYN-RECEIVED
//     (simultaneous open);
//   - receiving a SYN,ACK acknowledging our SYN: SYN-SENT -> ESTABLISHED;
//     receiving the ACK of our SYN: SYN-RECEIVED -> ESTABLISHED;
//   - sending a FIN: ESTABLISHED or SYN-RECEIVED -> FIN-WAIT-1, CLOSE-WAIT
//     -> LAST-ACK (CLOSE);
//   - receiving a FIN: ESTABLISHED -> CLOSE-WAIT, FIN-WAIT-1 -> CLOSING (our
//     FIN not yet acknowledged) or TIME-WAIT, FIN-WAIT-2 -> TIME-WAIT, and
//     in TIME-WAIT the 2MSL timer restarts (§3.10.7.4);
//   - receiving the ACK of our FIN: FIN-WAIT-1 -> FIN-WAIT-2, CLOSING ->
//     TIME-WAIT, LAST-ACK -> CLOSED;
//   - TIME-WAIT lasts Config.TimeWait (60 s, Linux's TCP_TIMEWAIT_LEN in
//     include/net/tcp.h, not the RFC's 2 MSL of 4 minutes), then CLOSED;
//   - an RST: its sender is CLOSED (ABORT, or it had no connection), and
//     so is its receiver unless in LISTEN (§3.10.7.2: an RST to a listener
//     is ignored) or, in SYN-SENT, unless it acknowledges our SYN
//     (§3.10.7.3).
//
// A refused connection (a SYN answered by RST,ACK) leaves both endpoints
// CLOSED: the server answered with an RST because no socket listened on
// the port (§3.10.7.1), so it never was in LISTEN for this connection;
// Linux's ss shows no socket on either side. A SYN flood leaves the server
// in SYN-RECEIVED for each half-open connection.
//
// # Counters
//
// Per direction: ISN, highest sequence end (seq + len, +1 for SYN and
// FIN), FIN sequence number, highest ACK, window (raw, and scaled when both
// SYNs carried the window scale option, RFC 7323 §2.2), zero-window
// advertisements, packets, TCP payload bytes, and retransmissions: a
// segment occupying sequence space (data, SYN or FIN) that overlaps
// space already seen in that direction. A segment that merely arrives
// below the highest sequence seen, filling a hole, was reordered before
// the capture point and is not counted. Counting SYN and FIN too makes the
// figure comparable with the sender's TcpRetransSegs, which counts them.
package track
