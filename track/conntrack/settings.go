package conntrack

import (
	"sync"
	"sync/atomic"
)

// An entry names its settings by a 16-bit index into a process-wide
// append-only registry instead of holding a pointer to them: a tracker
// keeps one entry per connection, and the index costs 2 bytes where a
// pointer costs 8. Index 0 is Defaults. Settings are interned by value, so
// a program using one configuration registers it once however many entries
// it creates.

// maxSettings is how many distinct settings a process can register.
const maxSettings = 1 << 16

var (
	settingsMu sync.Mutex                // serialises registration
	settings   atomic.Pointer[[]*Config] // the registry, replaced whole on registration
)

func init() {
	d := Defaults()
	s := []*Config{&d}
	settings.Store(&s)
}

// shared returns the index of settings equal to cfg, registering them if
// they are new. It returns false when the registry is full.
func shared(cfg Config) (uint16, bool) {
	if cfg == *(*settings.Load())[0] {
		return 0, true
	}
	settingsMu.Lock()
	defer settingsMu.Unlock()
	s := *settings.Load()
	for i, c := range s {
		if *c == cfg {
			return uint16(i), true
		}
	}
	if len(s) >= maxSettings {
		return 0, false
	}
	grown := append(s[:len(s):len(s)], &cfg)
	settings.Store(&grown)
	return uint16(len(grown) - 1), true
}

// conf returns the entry's settings.
func (e *Entry) conf() *Config { return (*settings.Load())[e.cfg] }
