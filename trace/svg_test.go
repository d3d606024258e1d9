package trace

import (
	"encoding/xml"
	"strings"
	"testing"
)

// TestEsc checks that text from a trace cannot break an SVG document:
// markup characters are escaped, characters XML forbids are replaced.
func TestEsc(t *testing.T) {
	for in, want := range map[string]string{
		`a<b>&"c'`:   "a&lt;b&gt;&amp;&quot;c&apos;",
		"tab\tok":    "tab\tok",
		"bell\x07":   "bell\uFFFD",
		"bad\xffutf": "bad\uFFFDutf",
		"état":       "état",
	} {
		got := esc(in)
		if got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
		doc := "<t a=\"" + got + "\">" + got + "</t>"
		if err := xml.NewDecoder(strings.NewReader(doc)).Decode(new(struct{})); err != nil {
			t.Errorf("esc(%q) does not make valid XML: %v", in, err)
		}
	}
}

func TestWrapWords(t *testing.T) {
	lines := wrapWords("one two three four five six seven eight nine ten", 60, 10)
	if len(lines) < 3 {
		t.Fatalf("%q: want at least 3 lines", lines)
	}
	for _, l := range lines {
		if textWidth(l, 10) > 60 && strings.Contains(l, " ") {
			t.Errorf("line %q wider than 60", l)
		}
	}
	if strings.Join(lines, " ") != "one two three four five six seven eight nine ten" {
		t.Errorf("words lost: %q", lines)
	}
}
