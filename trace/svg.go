package trace

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds what the SVG renderers (LadderSVG, DiagramSVG) share: a
// writer of SVG elements that escapes every piece of text, a guess at how
// wide text is, and word wrapping. The output is plain SVG 1.1: no
// scripts, no external fonts or stylesheets, so it displays the same in a
// browser, an image viewer or a slide.

// svgFont is the font stack every SVG uses; all are common system fonts,
// none is loaded from anywhere.
const (
	svgSans = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
	svgMono = "DejaVu Sans Mono, Menlo, Consolas, monospace"
)

// svgWriter writes SVG elements to a buffered writer.
type svgWriter struct {
	w *bufio.Writer
}

func (s *svgWriter) printf(format string, args ...any) { fmt.Fprintf(s.w, format, args...) }

// open writes the XML declaration and the svg element, sized w×h in
// pixels with a matching viewBox, and a white background.
func (s *svgWriter) open(w, h float64, title string) {
	s.printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	s.printf("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\" font-family=\"%s\">\n",
		num(w), num(h), num(w), num(h), svgSans)
	s.printf("<title>%s</title>\n", esc(title))
	s.printf("<rect x=\"0\" y=\"0\" width=\"%s\" height=\"%s\" fill=\"#ffffff\"/>\n", num(w), num(h))
}

func (s *svgWriter) close() { s.printf("</svg>\n") }

// text writes one line of text at (x, y) (y is the baseline). attrs are
// extra attributes, written as given: callers pass constants only.
func (s *svgWriter) text(x, y float64, attrs, str string) {
	s.printf("<text x=\"%s\" y=\"%s\" %s>%s</text>\n", num(x), num(y), attrs, esc(str))
}

// line writes a straight line.
func (s *svgWriter) line(x1, y1, x2, y2 float64, attrs string) {
	s.printf("<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" %s/>\n", num(x1), num(y1), num(x2), num(y2), attrs)
}

// rect writes a rectangle with rounded corners r.
func (s *svgWriter) rect(x, y, w, h, r float64, attrs string) {
	s.printf("<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" rx=\"%s\" %s/>\n", num(x), num(y), num(w), num(h), num(r), attrs)
}

// arrowMarker defines a filled arrow head with the given id and colour,
// drawn at the end of a line whose marker-end names it.
func (s *svgWriter) arrowMarker(id, colour string) {
	s.printf("<marker id=\"%s\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" orient=\"auto\">"+
		"<path d=\"M0,0 L10,5 L0,10 z\" fill=\"%s\"/></marker>\n", esc(id), esc(colour))
}

// cross draws an X of half-size r centred on (x, y).
func (s *svgWriter) cross(x, y, r float64, colour string) {
	a := fmt.Sprintf("stroke=\"%s\" stroke-width=\"3\" stroke-linecap=\"round\"", esc(colour))
	s.line(x-r, y-r, x+r, y+r, a)
	s.line(x-r, y+r, x+r, y-r, a)
}

// num formats a coordinate compactly: at most two decimals.
func num(f float64) string {
	return strconv.FormatFloat(float64(int64(f*100+copysignHalf(f)))/100, 'f', -1, 64)
}

func copysignHalf(f float64) float64 {
	if f < 0 {
		return -0.5
	}
	return 0.5
}

// esc escapes s for XML text and attribute values. Characters XML 1.0
// does not allow at all (most control characters, invalid UTF-8) become
// U+FFFD, so text from a trace file cannot break the document.
func esc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'':
			b.WriteString("&apos;")
		case r == utf8.RuneError && size == 1, !xmlChar(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// xmlChar reports whether XML 1.0 allows r in a document (its production
// Char, §2.2).
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// textWidth guesses the width in pixels of s set in a proportional sans
// font of the given size. It errs on the wide side so that layouts leave
// room rather than overlap.
func textWidth(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * 0.6
}

// monoWidth is the width of s in the monospace font at size.
func monoWidth(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * size * 0.61
}

// wrapWords breaks s into lines of at most width pixels at the given font
// size; a word longer than a line gets a line of its own.
func wrapWords(s string, width, size float64) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && textWidth(line+" "+word, size) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
