package trace

import (
	"bufio"
	"io"
	"math"
)

// LadderSVG draws recs as the ladder diagram Ladder draws, as a
// standalone SVG image meant for a slide or a web page: two vertical host
// lines under the hosts' names and addresses; each side's state in a box
// where it changes, with the time beside it; every segment a slanted
// arrow from sender to receiver carrying its flags, seq, ack, len and
// window, drawn from the line it leaves on to the line it arrives on when
// other events happen in between; retransmissions in orange and dashed;
// lost packets in red, their arrow ending in an X half way (a damaged one
// ends in an X at the receiver); timer expiries as a clock on the host
// line; notes across the ladder; and the plain-words explanation of each
// step in a lighter font in a column at the right (left out with
// opt.NoExplain). The layout is Ladder's: both renderers draw the same
// lines (layoutLadder). opt.Width is ignored: the image is sized to its
// content, with a viewBox, at one pixel per unit.
func LadderSVG(w io.Writer, recs []Record, opt LadderOptions) error {
	l := layoutLadder(recs, opt)
	bw := bufio.NewWriter(w)
	l.renderSVG(&svgWriter{w: bw})
	return bw.Flush()
}

// The ladder SVG's geometry, in pixels.
const (
	lsMargin    = 20.0
	lsTimeW     = 54.0  // the time column on each side
	lsBoxW      = 122.0 // a state box
	lsBoxH      = 22.0
	lsHeaderH   = 64.0
	lsRowH      = 46.0 // an arrow's row, without explanation
	lsSlant     = 14.0 // how far a delivered arrow falls while it crosses
	lsArrowY    = 24.0 // where an arrow leaves, below the top of its row
	lsLabelSize = 12.0
	lsNoteSize  = 12.0
	lsNoteLine  = 15.0
	lsNotesW    = 400.0
	lsLegendH   = 40.0
)

// The ladder SVG's colours.
const (
	lsInk     = "#1d3f8c" // segments
	lsRetx    = "#d9480f" // retransmissions
	lsLost    = "#c92a2a" // losses and damage
	lsTimer   = "#9c5700" // timer expiries
	lsGrey    = "#666666" // times, calls, explanations
	lsHostInk = "#333333"
)

// ladderGeom is where the columns of a ladder SVG are.
type ladderGeom struct {
	lineX  [2]float64 // the host lines
	boxX   [2]float64 // left edge of each side's state boxes
	timeX  [2]float64 // the time's anchor: end on the left, start on the right
	width  float64    // the ladder's width, without the notes column
	notesX float64
}

func (l *ladder) svgGeom() ladderGeom {
	span := 540.0
	for _, ln := range l.lines {
		if ln.label != "" {
			span = max(span, monoWidth(ln.label, lsLabelSize)+170)
		}
	}
	var g ladderGeom
	g.timeX[0] = lsMargin + lsTimeW
	g.boxX[0] = g.timeX[0] + 8
	g.lineX[0] = g.boxX[0] + lsBoxW + 14
	g.lineX[1] = g.lineX[0] + span
	g.boxX[1] = g.lineX[1] + 14
	g.timeX[1] = g.boxX[1] + lsBoxW + 8
	g.width = g.timeX[1] + lsTimeW + lsMargin
	g.notesX = g.width + 10
	return g
}

// svgRow is a ladder line placed on the page.
type svgRow struct {
	top, h float64
	notes  []string
}

func (l *ladder) renderSVG(s *svgWriter) {
	g := l.svgGeom()
	explain := !l.opt.NoExplain
	rows := make([]svgRow, len(l.lines))
	y := lsMargin + lsHeaderH
	for i, ln := range l.lines {
		r := &rows[i]
		r.top = y
		switch {
		case ln.note != "":
			r.notes = wrapWords(ln.note, g.lineX[1]-g.lineX[0]-20, lsNoteSize)
			r.h = 10 + float64(len(r.notes))*lsNoteLine
		case ln.side < 0:
			r.h = 36
		default:
			r.h = lsRowH
			if explain && len(ln.text) > 0 {
				r.notes = wrapWords(sentence(ln.text), lsNotesW-10, lsNoteSize)
				r.h = max(r.h, 14+float64(len(r.notes))*lsNoteLine)
			}
		}
		y += r.h
	}
	bottom := y + 10
	width := g.width
	if explain {
		width = g.notesX + lsNotesW + lsMargin
	}
	height := bottom + lsLegendH + lsMargin

	title := "TCP ladder diagram: " + l.names[0] + " and " + l.names[1]
	s.open(width, height, title)
	s.printf("<defs>\n")
	s.arrowMarker("a-seg", lsInk)
	s.arrowMarker("a-retx", lsRetx)
	s.arrowMarker("a-lost", lsLost)
	s.printf("</defs>\n")

	// The hosts: names, addresses, and their lines down the page.
	for i := range 2 {
		name := l.names[i]
		if name == "" {
			name = "?"
		}
		s.text(g.lineX[i], lsMargin+18, `text-anchor="middle" font-size="16" font-weight="bold" fill="`+lsHostInk+`"`, name)
		if l.addrs[i].IsValid() {
			s.text(g.lineX[i], lsMargin+36, `text-anchor="middle" font-size="12" fill="`+lsGrey+`"`, l.addrs[i].String())
		}
		s.line(g.lineX[i], lsMargin+lsHeaderH-16, g.lineX[i], bottom, `stroke="#9aa5b1" stroke-width="2"`)
	}
	if explain {
		s.text(g.notesX, lsMargin+18, `font-size="13" font-weight="bold" fill="`+lsGrey+`"`, "what happens")
	}

	// Where each line's arrow leaves and arrives, for arrows that span
	// several rows.
	index := map[*ladderLine]int{}
	for i, ln := range l.lines {
		index[ln] = i
	}
	linked := map[*ladderLine]bool{}
	for _, ln := range l.lines {
		if ln.src != nil {
			linked[ln.src] = true
		}
	}

	prev := [2]string{}
	for i, ln := range l.lines {
		r := rows[i]
		if explain && i > 0 && ln.note == "" {
			s.line(g.notesX, r.top, g.notesX+lsNotesW, r.top, `stroke="#eeeeee" stroke-width="1"`)
		}
		// evY is where each side acts on this line.
		evY := [2]float64{r.top + lsArrowY, r.top + lsArrowY}
		switch {
		case ln.note != "":
			mid := (g.lineX[0] + g.lineX[1]) / 2
			for k, t := range r.notes {
				s.text(mid, r.top+16+float64(k)*lsNoteLine, `text-anchor="middle" font-size="12" font-style="italic" fill="#2b7a3d"`, t)
			}
			continue
		case ln.side < 0:
			evY = [2]float64{r.top + 18, r.top + 18}
		case ln.fate != fateNone:
			evY[1-ln.side] += lsSlant
			if ln.fate == fateArrival || ln.fate == fateArrivalCorrupt {
				evY[ln.side] += lsSlant
			}
			l.svgArrow(s, g, ln, rows, index, linked)
			if ln.timer && ln.fate != fateArrival && ln.fate != fateArrivalCorrupt {
				l.svgEvent(s, g, ln, evY[ln.side])
			}
		case ln.tag != "":
			l.svgEvent(s, g, ln, evY[ln.side])
		}
		// States where they change, and each side's time.
		for side := range 2 {
			st := ln.st[side]
			if st != "" && st != prev[side] {
				bx := g.boxX[side]
				s.rect(bx, evY[side]-lsBoxH/2, lsBoxW, lsBoxH, 5, `fill="#eef3fb" stroke="`+lsInk+`" stroke-width="1.2"`)
				s.text(bx+lsBoxW/2, evY[side]+4.5, `text-anchor="middle" font-size="12" font-weight="bold" fill="`+lsInk+`"`, st)
			}
			prev[side] = st
			if ln.hasT[side] && l.known[side] {
				anchor := `text-anchor="end"`
				if side == 1 {
					anchor = `text-anchor="start"`
				}
				s.text(g.timeX[side], evY[side]+4, anchor+` font-size="11" fill="`+lsGrey+`"`, fmtTime(ln.t[side]))
			}
		}
		for k, t := range r.notes {
			s.text(g.notesX, r.top+lsArrowY-4+float64(k)*lsNoteLine, `font-size="12" fill="`+lsGrey+`"`, t)
		}
	}
	l.svgLegend(s, g, bottom+14)
	s.close()
}

// svgArrow draws the arrow of a segment's line.
func (l *ladder) svgArrow(s *svgWriter, g ladderGeom, ln *ladderLine, rows []svgRow, index map[*ladderLine]int, linked map[*ladderLine]bool) {
	from, to := ln.side, 1-ln.side
	if ln.fate == fateArrival || ln.fate == fateArrivalCorrupt {
		from, to = 1-ln.side, ln.side
	}
	x1, x2 := g.lineX[from], g.lineX[to]
	top := rows[index[ln]].top
	y1 := top + lsArrowY
	y2 := y1 + lsSlant
	colour, marker, dash := lsInk, "a-seg", ""
	if ln.retx {
		colour, marker, dash = lsRetx, "a-retx", ` stroke-dasharray="8 4"`
	}
	label := ln.label
	switch ln.fate {
	case fateInFlight:
		if linked[ln] {
			return // drawn by the line it arrives on
		}
		// Never arrives within the trace: an open-ended dotted arrow.
		x2 = x1 + (x2-x1)*0.6
		y2 = y1 + lsSlant*0.6
		s.line(x1, y1, x2, y2, `stroke="`+colour+`" stroke-width="1.6" stroke-dasharray="2 4"`)
	case fateDelivered:
		s.line(x1, y1, x2, y2, `stroke="`+colour+`" stroke-width="1.6"`+dash+` marker-end="url(#`+marker+`)"`)
	case fateCorrupt:
		colour = lsLost
		s.line(x1, y1, x2, y2, `stroke="`+lsLost+`" stroke-width="1.6"`+dash)
		s.cross(x2-(x2-x1)*0.03, y2, 6, lsLost)
	case fateLost:
		colour = lsLost
		frac := max(0.55, (monoWidth(label, lsLabelSize)+40)/math.Abs(x2-x1))
		x2 = x1 + (x2-x1)*frac
		y2 = y1 + lsSlant*frac
		s.line(x1, y1, x2, y2, `stroke="`+lsLost+`" stroke-width="1.6"`+dash)
		s.cross(x2, y2, 7, lsLost)
	case fateArrival, fateArrivalCorrupt:
		// From the line the packet left on, when it was drawn; otherwise
		// from one slant above.
		y2 = top + lsArrowY + lsSlant
		y1 = y2 - lsSlant
		if ln.src != nil {
			y1 = rows[index[ln.src]].top + lsArrowY
		}
		if ln.fate == fateArrivalCorrupt {
			colour = lsLost
			s.line(x1, y1, x2, y2, `stroke="`+lsLost+`" stroke-width="1.6"`+dash)
			s.cross(x2-(x2-x1)*0.03, y2-(y2-y1)*0.03, 6, lsLost)
		} else {
			s.line(x1, y1, x2, y2, `stroke="`+colour+`" stroke-width="1.6"`+dash+` marker-end="url(#`+marker+`)"`)
		}
	}
	// The label rides on the arrow, turned to its slope, upright.
	mx, my := (x1+x2)/2, (y1+y2)/2
	if ln.fate == fateLost {
		// Centred on the stretch of line it has, not over the X.
		mx, my = x1+(x2-x1)*0.45, y1+(y2-y1)*0.45
	}
	ang := math.Atan2(y2-y1, x2-x1) * 180 / math.Pi
	if ang > 90 {
		ang -= 180
	} else if ang < -90 {
		ang += 180
	}
	s.printf("<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" font-family=\"%s\" font-size=\"12\" fill=\"%s\" transform=\"rotate(%s %s %s)\">%s</text>\n",
		num(mx), num(my-5), svgMono, colour, num(ang), num(mx), num(my), esc(label))
}

// svgEvent draws a line without an arrow: a timer's expiry as a clock on
// the host line, a call as a tag beside it.
func (l *ladder) svgEvent(s *svgWriter, g ladderGeom, ln *ladderLine, y float64) {
	x := g.lineX[ln.side]
	dir := 1.0
	anchor := `text-anchor="start"`
	if ln.side == 1 {
		dir, anchor = -1, `text-anchor="end"`
	}
	if ln.timer {
		ty := y + 4
		if ln.fate != fateNone {
			ty = y + 20 // under the arrow that the expiry sends
		}
		s.printf("<circle cx=\"%s\" cy=\"%s\" r=\"8\" fill=\"#fff4e0\" stroke=\"%s\" stroke-width=\"1.8\"/>\n", num(x), num(y), lsTimer)
		s.line(x, y, x, y-5, `stroke="`+lsTimer+`" stroke-width="1.6" stroke-linecap="round"`)
		s.line(x, y, x+4, y, `stroke="`+lsTimer+`" stroke-width="1.6" stroke-linecap="round"`)
		s.text(x+dir*16, ty, anchor+` font-size="12" font-weight="bold" fill="`+lsTimer+`"`, ln.tag)
		return
	}
	w := textWidth(ln.tag, 11) + 12
	bx := x + dir*10
	if dir < 0 {
		bx -= w
	}
	s.rect(bx, y-9, w, 18, 9, `fill="#f1f3f5" stroke="#adb5bd"`)
	s.text(bx+w/2, y+4, `text-anchor="middle" font-size="11" fill="#333333"`, ln.tag)
}

// svgLegend explains the arrows' colours under the ladder.
func (l *ladder) svgLegend(s *svgWriter, g ladderGeom, y float64) {
	x := g.lineX[0]
	item := func(w float64, draw func(x float64), label string) {
		draw(x)
		s.text(x+w+8, y+4, `font-size="11" fill="`+lsGrey+`"`, label)
		x += w + 16 + textWidth(label, 11)
	}
	item(40, func(x float64) {
		s.line(x, y, x+40, y, `stroke="`+lsInk+`" stroke-width="1.6" marker-end="url(#a-seg)"`)
	}, "segment")
	item(40, func(x float64) {
		s.line(x, y, x+40, y, `stroke="`+lsRetx+`" stroke-width="1.6" stroke-dasharray="8 4" marker-end="url(#a-retx)"`)
	}, "retransmission")
	item(40, func(x float64) {
		s.line(x, y, x+32, y, `stroke="`+lsLost+`" stroke-width="1.6"`)
		s.cross(x+34, y, 5, lsLost)
	}, "lost or damaged")
	item(16, func(x float64) {
		s.printf("<circle cx=\"%s\" cy=\"%s\" r=\"7\" fill=\"#fff4e0\" stroke=\"%s\" stroke-width=\"1.6\"/>\n", num(x+8), num(y), lsTimer)
	}, "timer expires")
}
