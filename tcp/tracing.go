//go:build !tcpstate_notrace

package tcp

// tracing is true in normal builds: a Conn builds the events its observer
// asks for. Build with -tags tcpstate_notrace to remove every emit site,
// which the benchmarks use as the baseline "no tracing code at all".
const tracing = true
