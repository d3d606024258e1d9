#!/usr/bin/env bash
# render-svg.sh SVG [PNG] — renders an SVG that tcpstate drew (tcpstate
# ladder --format svg, tcpstate diagram) to PNG, to look at. It uses
# rsvg-convert (Debian package librsvg2-bin) or, failing that, python3 with
# cairosvg. PNG defaults to the SVG's name with .png.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 FILE.svg [OUT.png]" >&2
	exit 2
fi
in=$1
out=${2:-${in%.svg}.png}
if command -v rsvg-convert >/dev/null 2>&1; then
	rsvg-convert -o "$out" "$in"
elif python3 -c 'import cairosvg' >/dev/null 2>&1; then
	python3 -c 'import sys, cairosvg; cairosvg.svg2png(url=sys.argv[1], write_to=sys.argv[2])' "$in" "$out"
else
	echo "$0: need rsvg-convert (apt-get install librsvg2-bin) or python3 cairosvg" >&2
	exit 1
fi
echo "$out"
