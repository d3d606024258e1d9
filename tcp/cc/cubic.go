package cc

// NewCubic returns CUBIC (RFC 9438) set up for cfg.
//
// Until CUBIC's own window function lands, it behaves as NewReno.
func NewCubic(cfg Config) Algorithm { return NewNewReno(cfg) }
