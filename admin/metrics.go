package admin

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The metrics. The TCP-MIB counters keep RFC 4022's names, in the manner
// of node_exporter's node_netstat_Tcp_ActiveOpens, so a dashboard built
// for the kernel's counters reads these the same way.
var (
	mibCounters = []struct {
		name, help string
		get        func(*Stats) uint64
	}{
		{"ActiveOpens", "RFC 4022 tcpActiveOpens: transitions from CLOSED to SYN-SENT.", func(s *Stats) uint64 { return s.ActiveOpens }},
		{"PassiveOpens", "RFC 4022 tcpPassiveOpens: transitions from LISTEN to SYN-RECEIVED.", func(s *Stats) uint64 { return s.PassiveOpens }},
		{"AttemptFails", "RFC 4022 tcpAttemptFails: SYN-SENT or SYN-RECEIVED to CLOSED, and SYN-RECEIVED to LISTEN.", func(s *Stats) uint64 { return s.AttemptFails }},
		{"EstabResets", "RFC 4022 tcpEstabResets: ESTABLISHED or CLOSE-WAIT straight to CLOSED.", func(s *Stats) uint64 { return s.EstabResets }},
		{"InSegs", "RFC 4022 tcpInSegs: segments received.", func(s *Stats) uint64 { return s.InSegs }},
		{"OutSegs", "RFC 4022 tcpOutSegs: segments sent.", func(s *Stats) uint64 { return s.OutSegs }},
		{"RetransSegs", "RFC 4022 tcpRetransSegs: segments retransmitted.", func(s *Stats) uint64 { return s.RetransSegs }},
		{"InErrs", "RFC 4022 tcpInErrs: segments received in error (bad checksum or malformed header).", func(s *Stats) uint64 { return s.InErrs }},
		{"OutRsts", "RFC 4022 tcpOutRsts: segments sent with RST.", func(s *Stats) uint64 { return s.OutRsts }},
	}
	otherCounters = []struct {
		name, help string
		get        func(*Stats) uint64
	}{
		{"tcpstate_packets_in_total", "IP packets read from the link.", func(s *Stats) uint64 { return s.InPackets }},
		{"tcpstate_packets_out_total", "IP packets written to the link.", func(s *Stats) uint64 { return s.OutPackets }},
		{"tcpstate_dup_acks_total", "Duplicate ACKs received (RFC 5681).", func(s *Stats) uint64 { return s.DupAcks }},
		{"tcpstate_syncookies_sent_total", "SYN,ACKs sent with a SYN cookie because a SYN queue was full (RFC 4987).", func(s *Stats) uint64 { return s.SynCookiesSent }},
		{"tcpstate_syncookies_validated_total", "ACKs that returned a valid SYN cookie and opened a connection.", func(s *Stats) uint64 { return s.SynCookiesValid }},
		{"tcpstate_syncookies_failed_total", "ACKs that carried an invalid or expired SYN cookie.", func(s *Stats) uint64 { return s.SynCookiesInvalid }},
		{"tcpstate_icmp_echo_replies_total", "ICMP echo replies sent.", func(s *Stats) uint64 { return s.ICMPEchoReplies }},
		{"tcpstate_icmp_errors_total", "ICMP errors received about our connections.", func(s *Stats) uint64 { return s.ICMPErrors }},
		{"tcpstate_link_write_errors_total", "Failures writing packets to the link.", func(s *Stats) uint64 { return s.WriteErrors }},
		{"tcpstate_admin_events_dropped_total", "Events a slow /events client did not take in time.", func(s *Stats) uint64 { return s.EventsDropped }},
	}

	currEstabDesc   = prometheus.NewDesc("tcpstate_Tcp_CurrEstab", "RFC 4022 tcpCurrEstab: connections in ESTABLISHED or CLOSE-WAIT.", nil, nil)
	connsDesc       = prometheus.NewDesc("tcpstate_connections", "Connections (and listeners) in each state.", []string{"state"}, nil)
	transitionsDesc = prometheus.NewDesc("tcpstate_transitions_total", "State changes, by from, to and cause.", []string{"from", "to", "cause"}, nil)
	dropsDesc       = prometheus.NewDesc("tcpstate_drops_total", "Packets and segments discarded, by reason.", []string{"reason"}, nil)
	mibDescs        = func() []*prometheus.Desc {
		var d []*prometheus.Desc
		for _, c := range mibCounters {
			d = append(d, prometheus.NewDesc("tcpstate_Tcp_"+c.name, c.help, nil, nil))
		}
		return d
	}()
	otherDescs = func() []*prometheus.Desc {
		var d []*prometheus.Desc
		for _, c := range otherCounters {
			d = append(d, prometheus.NewDesc(c.name, c.help, nil, nil))
		}
		return d
	}()
)

// collector reads the stack's counters at each scrape, so the stack keeps
// no Prometheus state of its own and pays nothing between scrapes.
type collector struct{ a *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range mibDescs {
		ch <- d
	}
	for _, d := range otherDescs {
		ch <- d
	}
	ch <- currEstabDesc
	ch <- connsDesc
	ch <- transitionsDesc
	ch <- dropsDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.stats()
	for i, m := range mibCounters {
		ch <- prometheus.MustNewConstMetric(mibDescs[i], prometheus.CounterValue, float64(m.get(&st)))
	}
	for i, m := range otherCounters {
		ch <- prometheus.MustNewConstMetric(otherDescs[i], prometheus.CounterValue, float64(m.get(&st)))
	}
	ch <- prometheus.MustNewConstMetric(currEstabDesc, prometheus.GaugeValue, float64(st.CurrEstab))
	for state, n := range st.States {
		ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(n), state)
	}
	for _, t := range c.a.transitions() {
		ch <- prometheus.MustNewConstMetric(transitionsDesc, prometheus.CounterValue, float64(t.Count), t.From, t.To, t.Cause)
	}
	for reason, n := range st.Drops {
		ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(n), reason)
	}
}
