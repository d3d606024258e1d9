package demo

import (
	"bytes"
	"time"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/sim"
	"github.com/tcpstate/tcpstate/tcp"
)

const ms = time.Millisecond

// payload returns n bytes of readable text, so data is easy to recognise.
func payload(n int, fill string) []byte {
	return bytes.Repeat([]byte(fill), n/len(fill)+1)[:n]
}

var scenarios = []*Scenario{
	{
		Name:  "handshake",
		Title: "Three-way handshake: SYN; SYN,ACK; ACK",
		About: "The article's three messages that open a connection. The client sends SYN " +
			"(message 1) and enters SYN-SENT; the listening server answers SYN,ACK " +
			"(message 2), acknowledging the client's SYN and sending its own, and enters " +
			"SYN-RECEIVED; the client's ACK (message 3) completes it. A SYN occupies one " +
			"sequence number, so the SYN at seq=1000 is acknowledged with ack=1001 " +
			"(RFC 9293 §3.4).",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
		},
	},
	{
		Name:  "data",
		Title: "Data transfer: each segment acknowledged",
		About: "After the handshake, data flows both ways. The sequence number counts " +
			"bytes: 100 bytes sent at seq=1001 are acknowledged with ack=1101, the next " +
			"byte expected. Each ACK also carries the receiver's window, the room left " +
			"in its buffer (RFC 9293 §3.8.6).",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.At(100*ms, func() { c.Write(payload(100, "GET /index.html ")) })
			s.At(200*ms, func() { s.Accepted.Write(payload(300, "HTTP/1.1 200 OK ")) })
		},
	},
	{
		Name:  "close",
		Title: "Four-segment close, TIME-WAIT and its 2MSL wait",
		About: "The article's four messages that close a connection. Each direction is " +
			"closed on its own: the client's FIN (message 4) takes it to FIN-WAIT-1; the " +
			"server acknowledges it with ack = the FIN's seq + 1 (message 5) and sits in " +
			"CLOSE-WAIT until its application closes; then its FIN (message 6) takes it " +
			"to LAST-ACK and the client's ACK (message 7) closes it. The client, which " +
			"closed first, waits in TIME-WAIT for 2MSL (60 s here, as on Linux) before " +
			"CLOSED, in case its last ACK was lost and the FIN comes again.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.CloseOn(tcp.CloseWait, 50*ms)
			s.At(100*ms, func() { c.Close() })
		},
	},
	{
		Name:  "half-close",
		Title: "Half close: the side in CLOSE-WAIT still sends data",
		About: "A FIN only says that its sender has no more data; the other direction stays " +
			"open. The client sends a request and closes its side at once (FIN-WAIT-1, " +
			"then FIN-WAIT-2 when the FIN is acknowledged). The server, in CLOSE-WAIT, " +
			"goes on sending its reply, which the client keeps receiving and " +
			"acknowledging in FIN-WAIT-2, and only then closes. This is the article's " +
			"\"half off\" state: B can still send to A.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.At(100*ms, func() {
				c.Write(payload(20, "GET / HTTP/1.0\r\n"))
				c.Close()
			})
			s.OnAccept(func(sc *sim.Conn) {
				sc.OnState(func(sc *sim.Conn, _, to tcp.State) {
					if to != tcp.CloseWait {
						return
					}
					s.W.After(50*ms, func() { sc.Write(payload(300, "HTTP/1.0 200 OK ")) })
					s.W.After(100*ms, func() { sc.Write(payload(200, "<html>...</html>")) })
					s.W.After(150*ms, sc.Close)
				})
			})
		},
	},
	{
		Name:  "fin-ack",
		Title: "FIN and ACK in one segment: FIN-WAIT-1 straight to TIME-WAIT",
		About: "The article: \"If in FIN_WAIT1 the other side's segment carries both FIN and " +
			"ACK, go directly to TIME_WAIT without FIN_WAIT2.\" That is what most closes " +
			"look like on the wire today. The server delays its ACKs (40 ms, Linux's " +
			"delayed-ACK minimum; RFC 9293 §3.8.6.3) in case something can ride along. " +
			"Its application closes as soon as it reads the client's FIN, well within " +
			"those 40 ms, so the server's FIN carries the ACK of the client's FIN: three " +
			"segments instead of four, and the client, whose FIN is acknowledged by the " +
			"FIN itself, skips FIN-WAIT-2 (RFC 9293 §3.10.7.4, eighth step).",
		config: func() tcp.Config {
			c := Classic()
			c.AckDelay = 0 // the default: 40 ms
			return c
		},
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.CloseOn(tcp.CloseWait, 0)
			s.At(100*ms, func() { c.Close() })
		},
	},
	{
		Name:  "simultaneous-close",
		Title: "Simultaneous close: FINs cross, both sides pass through CLOSING",
		About: "When both applications close at the same moment, each FIN is sent before the " +
			"other arrives. Each side, in FIN-WAIT-1, receives a FIN that does not yet " +
			"acknowledge its own: it acknowledges the FIN and enters CLOSING, the rare " +
			"state the article describes as \"both sides try to close at the same time\". " +
			"When the ACK of its own FIN arrives it enters TIME-WAIT; both sides wait " +
			"2MSL.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.At(100*ms, func() {
				c.Close()
				s.Accepted.Close()
			})
		},
	},
	{
		Name:  "lost-final-ack",
		Title: "Lost final ACK: LAST-ACK retransmits its FIN, TIME-WAIT answers again",
		About: "Why TIME-WAIT exists, the article's first reason: the last ACK may be lost. " +
			"The server in LAST-ACK hears nothing, so its retransmission timer resends " +
			"the FIN. The client, still in TIME-WAIT, acknowledges it again and restarts " +
			"its 2MSL timer (RFC 9293 §3.10.7.4, TIME-WAIT). Had the client gone straight " +
			"to CLOSED, the repeated FIN would have drawn an RST and the server would " +
			"have seen an error instead of a clean close.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.CloseOn(tcp.CloseWait, 50*ms)
			s.Link.Dir(s.A).DropIf(sim.Nth(1, func(p sim.PacketInfo) bool {
				return p.Seg.Flags == header.ACK && p.Seg.Ack == ISSB+2
			}), "the client's last ACK is lost")
			s.At(100*ms, func() { c.Close() })
		},
	},
	{
		Name:  "old-duplicate-syn",
		Title: "Old duplicate SYN: reset, no half-open connection left behind",
		About: "The article's \"invalid connection request segment\", and why the handshake " +
			"has three messages (RFC 9293 Figure 8). A SYN from an earlier incarnation " +
			"(seq=900), delayed in the network, reaches the server before the client's " +
			"new SYN. The server answers it with SYN,ACK ack=901; the client, which " +
			"never sent seq=900, sees an acknowledgment of nothing it sent and answers " +
			"RST. The reset sends the server's connection back to LISTEN, and the real " +
			"SYN then opens the connection normally. With a two-message handshake the " +
			"server would have sat on a connection nobody wanted.",
		script: func(s *Stage) {
			src := s.A.AddrPort(sim.FirstEphemeralPort)
			dst := s.B.AddrPort(ServerPort)
			s.At(0, func() {
				s.A.Inject(src, dst, &tcp.Segment{Seq: 900, Flags: header.SYN, Window: 65535},
					"an old duplicate SYN from an earlier connection, long delayed, arrives first")
			})
			s.Link.Dir(s.A).DelayIf(func(p sim.PacketInfo) bool {
				return p.Seg.Flags == header.SYN && p.Seg.Seq == ISSA
			}, 50*ms, "the network delays the client's new SYN by 50ms")
			var c *sim.Conn
			s.Dial(0, &c)
		},
	},
	{
		Name:  "simultaneous-open",
		Title: "Simultaneous open: SYN-SENT -> SYN-RECEIVED -> ESTABLISHED on both sides",
		About: "Two applications actively open a connection to each other at the same " +
			"moment, each from the port the other dials (RFC 9293 Figure 7). Each SYN " +
			"arrives at a side in SYN-SENT, which enters SYN-RECEIVED and answers " +
			"SYN,ACK; each SYN,ACK then completes a handshake. Four segments instead of " +
			"three, no listener, and one connection.",
		Left:  "A",
		Right: "B",
		script: func(s *Stage) {
			const pa, pb = 40001, 40002
			s.At(0, func() {
				_, _ = s.A.DialFrom(pa, s.B.AddrPort(pb))
				_, _ = s.B.DialFrom(pb, s.A.AddrPort(pa))
			})
		},
	},
	{
		Name:  "syn-recv-timeout",
		Title: "The last handshake ACK never arrives: SYN-RECEIVED, SYN,ACK resent, given up",
		About: "What `ipvsadm -lc | grep syn_recv` shows: servers with a SYN answered and no " +
			"ACK back. The article says SYN_RCVD is hard to see unless a client " +
			"deliberately withholds the last ACK; here the client's path fails right " +
			"after its SYN. The client thinks the connection is ESTABLISHED; the server " +
			"waits in SYN-RECEIVED, resends its SYN,ACK with the timeout doubling each " +
			"time (1, 2, 4, 8, 16 s), and after 5 tries (Linux's tcp_synack_retries) " +
			"gives up. When the path heals and the client finally sends data, the server " +
			"has no such connection and answers RST.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.Link.Dir(s.A).DropIf(func(p sim.PacketInfo) bool {
				return p.N > 1 && p.T < 65*time.Second
			}, "the client's path has failed: lost")
			s.Note(70*time.Second, "the client's path works again; its application sends a request")
			s.At(70*time.Second, func() { c.Write(payload(20, "GET / HTTP/1.0\r\n")) })
		},
	},
	{
		Name:  "refused",
		Title: "Connection refused: SYN to a closed port draws RST",
		About: "Nobody listens on port 81. A segment that belongs to no connection gets a " +
			"reset (RFC 9293 §3.10.7.1): for a SYN without ACK, <SEQ=0><ACK=SEG.SEQ+1>" +
			"<CTL=RST,ACK>. The client in SYN-SENT accepts it, since it acknowledges its " +
			"SYN, and reports \"connection refused\" (ECONNREFUSED).",
		script: func(s *Stage) {
			s.At(0, func() { _, _ = s.A.Dial(s.B.AddrPort(81)) })
		},
	},
	{
		Name:  "abort",
		Title: "ABORT: one RST ends the connection at once",
		About: "CLOSE is polite: data first, then FIN, and both sides agree. ABORT is not: " +
			"the client discards what it had queued and sends <SEQ=SND.NXT><CTL=RST> " +
			"(RFC 9293 §3.10.5). The server, whose next expected sequence number that " +
			"is, closes at once and reports \"connection reset\" (ECONNRESET). Neither " +
			"side goes through TIME-WAIT.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.At(100*ms, func() { c.Write(payload(100, "PUT /upload.bin ")) })
			s.At(200*ms, func() { c.Abort() })
		},
	},
	{
		Name:  "retransmit",
		Title: "A lost segment and its retransmission timeout",
		About: "The server's reply is lost on the way. Nothing tells the server so: no ACK " +
			"comes back. Its retransmission timer, armed when the segment left, expires " +
			"and the segment is sent again (RFC 9293 §3.8.1). How long the timer waits " +
			"comes from the round trips measured so far (RFC 6298): here the handshake " +
			"measured 20 ms, so the timeout is the 200 ms floor (Linux's minimum), not " +
			"the initial 1 s. Each further loss of the same segment would double it.",
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.At(100*ms, func() { c.Write(payload(100, "GET /index.html ")) })
			s.OnAccept(func(sc *sim.Conn) {
				sc.OnState(func(sc *sim.Conn, _, to tcp.State) {
					if to == tcp.CloseWait {
						sc.Close()
					}
				})
			})
			s.At(150*ms, func() { s.Accepted.Write(payload(1000, "HTTP/1.1 200 OK ")) })
			s.Link.Dir(s.B).DropIf(sim.Nth(1, func(p sim.PacketInfo) bool { return p.Seg.Len > 0 }),
				"the reply is lost")
			s.At(2*time.Second, func() { c.Close() })
		},
	},
	{
		Name:  "fast-retransmit",
		Title: "Fast retransmit: duplicate ACKs and SACK report a hole",
		About: "The client sends six segments in a burst; the second is lost. The server " +
			"acknowledges every segment that arrives out of order at once, each time " +
			"with the same ack=1501, the first byte it is missing: duplicate ACKs. Their " +
			"SACK blocks (RFC 2018) say which bytes beyond the hole did arrive. After " +
			"three duplicate ACKs (RFC 5681 §3.2), or as soon as SACK shows more than two " +
			"segments' worth of data beyond the hole (RFC 6675), the client resends the " +
			"missing segment at once, without waiting for its retransmission timer, and " +
			"halves its congestion window. The server, which kept the out-of-order " +
			"segments, then acknowledges all six at once.",
		config: func() tcp.Config {
			return tcp.Config{MSS: 500, NoWindowScale: true, NoTimestamps: true}
		},
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.CloseOn(tcp.CloseWait, 0)
			s.At(100*ms, func() { c.Write(payload(3000, "0123456789abcdef")) })
			s.Link.Dir(s.A).DropIf(sim.Nth(2, func(p sim.PacketInfo) bool { return p.Seg.Len > 0 }),
				"the second segment is lost")
			s.At(500*ms, func() { c.Close() })
		},
	},
	{
		Name:  "zero-window",
		Title: "Zero window: the reader stops, the sender probes, the window reopens",
		About: "Flow control. The server's application stops reading, and its receive " +
			"buffer (2000 bytes here) fills: each ACK advertises less room, until win=0 " +
			"tells the client to stop (RFC 9293 §3.8.6). The client may not send, but must " +
			"not wait for ever either, since the ACK that reopens the window could be " +
			"lost: its persist timer sends zero-window probes, further apart each time, " +
			"and the server answers each with its window (RFC 9293 §3.8.6.1). When the " +
			"application reads again the server announces the free space with a window " +
			"update, and the client sends the rest.",
		config: func() tcp.Config {
			c := Classic()
			c.MSS = 500
			c.ReceiveBuffer = 2000
			return c
		},
		script: func(s *Stage) {
			var c *sim.Conn
			s.Dial(0, &c)
			s.OnAccept(func(sc *sim.Conn) { sc.SetAutoRead(false) })
			s.CloseOn(tcp.CloseWait, 0)
			s.At(100*ms, func() { c.Write(payload(3000, "0123456789abcdef")) })
			s.Note(2500*ms, "the server's application reads again")
			s.At(2500*ms, func() { s.Accepted.SetAutoRead(true) })
			s.At(3000*ms, func() { c.Close() })
		},
	},
	{
		Name:  "lossy",
		Title: "A lossy network: loss, duplication, reordering and corruption, recovered",
		About: "A request and a reply, 500 bytes a segment, over a link that loses 15% of " +
			"packets, duplicates 5%, reorders 5% and corrupts 5% (the checksum catches " +
			"it and the packet is dropped), between hosts with today's defaults: delayed " +
			"ACKs and SACK. Duplicate ACKs and SACK blocks trigger fast retransmits, the " +
			"retransmission timer catches the rest; duplicates and out-of-order segments " +
			"are recognised by their sequence numbers, and both sides still close " +
			"cleanly. Which packets suffer depends on --seed.",
		config: func() tcp.Config {
			return tcp.Config{MSS: 500, NoWindowScale: true, NoTimestamps: true}
		},
		script: func(s *Stage) {
			s.Link.SetConfig(sim.LinkConfig{
				Delay: OneWay, Jitter: 2 * ms, Loss: 0.15, Duplicate: 0.05,
				Reorder: 0.05, ReorderDelay: 15 * ms, Corrupt: 0.05,
			})
			s.OnAccept(func(sc *sim.Conn) {
				sc.OnState(func(sc *sim.Conn, from, to tcp.State) {
					// One step may go from SYN-RECEIVED to CLOSE-WAIT.
					if !from.Synchronized() && to.Synchronized() {
						sc.Write(payload(1000, "reply "))
					}
					if to == tcp.CloseWait {
						sc.Close()
					}
				})
			})
			s.At(0, func() {
				c, err := s.A.Dial(s.B.AddrPort(ServerPort))
				if err == nil {
					c.Write(payload(1500, "request "))
					c.Close()
				}
			})
		},
	},
}
