package trace

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
)

// FormatOptions writes a segment's TCP options compactly, space
// separated, in the order they are listed here: "mss=1460" (maximum
// segment size), "ws=7" (window scale shift), "sackOK" (SACK permitted),
// "ts=VAL/ECR" (timestamps), "sack=L-R,L-R" (SACK blocks, each the
// half-open range [L, R) the receiver holds). No options: "".
func FormatOptions(o *header.TCPOptions) string {
	if !o.HasMSS && !o.HasWindowScale && !o.SACKPermitted && !o.HasTimestamps && o.NumSACK <= 0 {
		return ""
	}
	b := make([]byte, 0, 48)
	sep := func() {
		if len(b) > 0 {
			b = append(b, ' ')
		}
	}
	if o.HasMSS {
		b = append(b, "mss="...)
		b = strconv.AppendUint(b, uint64(o.MSS), 10)
	}
	if o.HasWindowScale {
		sep()
		b = append(b, "ws="...)
		b = strconv.AppendUint(b, uint64(o.WindowScale), 10)
	}
	if o.SACKPermitted {
		sep()
		b = append(b, "sackOK"...)
	}
	if o.HasTimestamps {
		sep()
		b = append(b, "ts="...)
		b = strconv.AppendUint(b, uint64(o.TSVal), 10)
		b = append(b, '/')
		b = strconv.AppendUint(b, uint64(o.TSEcr), 10)
	}
	if n := min(o.NumSACK, header.MaxSACKBlocks); n > 0 {
		sep()
		b = append(b, "sack="...)
		for i, blk := range o.SACKBlocks[:n] {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(blk.Left), 10)
			b = append(b, '-')
			b = strconv.AppendUint(b, uint64(blk.Right), 10)
		}
	}
	return string(b)
}

// ParseOptions reads what FormatOptions writes.
func ParseOptions(s string) (header.TCPOptions, error) {
	var o header.TCPOptions
	for f := range strings.FieldsSeq(s) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "mss":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 16)
			o.MSS, o.HasMSS = uint16(n), true
		case "ws":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 8)
			o.WindowScale, o.HasWindowScale = uint8(n), true
		case "sackOK":
			o.SACKPermitted = true
		case "ts":
			val, ecr, ok := strings.Cut(v, "/")
			var a, e uint64
			a, err = strconv.ParseUint(val, 10, 32)
			if err == nil {
				e, err = strconv.ParseUint(ecr, 10, 32)
			}
			if !ok && err == nil {
				err = fmt.Errorf("want VAL/ECR")
			}
			o.TSVal, o.TSEcr, o.HasTimestamps = uint32(a), uint32(e), true
		case "sack":
			for blk := range strings.SplitSeq(v, ",") {
				l, r, ok := strings.Cut(blk, "-")
				if !ok || o.NumSACK == header.MaxSACKBlocks {
					err = fmt.Errorf("bad SACK block %q", blk)
					break
				}
				var a, e uint64
				a, err = strconv.ParseUint(l, 10, 32)
				if err == nil {
					e, err = strconv.ParseUint(r, 10, 32)
				}
				if err != nil {
					break
				}
				o.SACKBlocks[o.NumSACK] = header.SACKBlock{Left: seqnum.Value(a), Right: seqnum.Value(e)}
				o.NumSACK++
			}
		default:
			err = fmt.Errorf("unknown option")
		}
		if err != nil {
			return o, fmt.Errorf("trace: option %q: %v", f, err)
		}
	}
	return o, nil
}

// optionsPhrase says in words what a segment's options offer or report,
// for the ladder's explanations; "" when there is nothing to say.
func optionsPhrase(opts string) string {
	if opts == "" {
		return ""
	}
	o, err := ParseOptions(opts)
	if err != nil {
		return ""
	}
	var parts []string
	if o.HasMSS {
		parts = append(parts, fmt.Sprintf("MSS %d", o.MSS))
	}
	if o.HasWindowScale {
		parts = append(parts, fmt.Sprintf("window scale %d (x%d)", o.WindowScale, 1<<min(o.WindowScale, 14)))
	}
	if o.SACKPermitted {
		parts = append(parts, "SACK")
	}
	if o.HasTimestamps && o.HasMSS {
		parts = append(parts, "timestamps")
	}
	var s string
	if len(parts) > 0 {
		s = "offers " + strings.Join(parts, ", ")
	}
	if o.NumSACK > 0 {
		var blks []string
		for _, b := range o.SACKBlocks[:min(o.NumSACK, header.MaxSACKBlocks)] {
			blks = append(blks, fmt.Sprintf("%d-%d", b.Left, b.Right))
		}
		if s != "" {
			s += ", "
		}
		s += "selectively acknowledges (SACK) " + strings.Join(blks, ", ")
	}
	return s
}
