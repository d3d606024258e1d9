#!/bin/sh
# bench-track.sh: times `tcpstate track FILE --format json` against
# `tshark -r FILE -q -z conv,tcp` on a generated capture of PACKETS packets
# (default 2,000,000) and counts the connections both report.
# Usage: scripts/bench-track.sh [PACKETS] [SEED]
set -eu
packets=${1:-2000000}
seed=${2:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$(dirname "$0")/.."
go build -o "$dir/tcpstate" ./cmd/tcpstate
go run ./track/tracktest/gencap -packets "$packets" -seed "$seed" -o "$dir/c.pcap"
now() { date +%s.%N; }
t0=$(now)
"$dir/tcpstate" track "$dir/c.pcap" --format json --no-progress > "$dir/track.json"
t1=$(now)
tshark -r "$dir/c.pcap" -q -z conv,tcp > "$dir/tshark.txt" 2>/dev/null
t2=$(now)
ours=$(wc -l < "$dir/track.json")
theirs=$(grep -c '<->' "$dir/tshark.txt" || true)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v p="$packets" -v o="$ours" -v t="$theirs" 'BEGIN {
	printf "tcpstate track: %.3f s (%.0f packets/s), %d connections\n", b-a, p/(b-a), o
	printf "tshark conv,tcp: %.3f s, %d connections\n", c-b, t
	printf "ratio: %.1fx\n", (c-b)/(b-a)
}'
[ "$ours" -eq "$theirs" ] || { echo "connection counts differ" >&2; exit 1; }
