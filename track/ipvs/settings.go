package ipvs

import "github.com/tcpstate/tcpstate/track/internal/intern"

// An entry names its settings by a 16-bit index into a process-wide
// append-only table instead of holding a pointer to them: a tracker keeps
// one entry per connection, and the index costs 2 bytes where a pointer
// costs 8. Index 0 is Defaults. Settings are interned by value, so a
// program using one configuration registers it once however many entries
// it creates; the table holds at most intern.Max distinct settings.
var settings = intern.New(Defaults())

// shared returns the index of settings equal to cfg, registering them if
// they are new. It returns false when the table is full.
func shared(cfg Config) (uint16, bool) { return settings.Index(cfg) }

// conf returns the entry's settings.
func (e *Entry) conf() *Config { return settings.At(e.cfg) }
