//go:build tcpstate_notrace

package tcp

// tracing is false under the tcpstate_notrace build tag: no event is ever
// built and the compiler drops the emit sites. The tag exists only to
// measure what observation costs; tests that watch events fail under it.
const tracing = false
