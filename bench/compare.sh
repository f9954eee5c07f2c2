#!/usr/bin/env bash
# bench/compare.sh — replay speed of icmpids against its references, in one
# run and one table.
#
# Builds icmpids, icmpids-gen and bench/floor (pcapgo + one gopacket
# DecodingLayerParser, no detection); generates two captures with the
# generator in tmpfs (/dev/shm when there is one) — a realistic mix (600 B
# average, 30 % ICMP, VLAN, IPv6, fragment trains) and an echo flood in
# which every packet has a new spoofed source — then times, interleaved RUNS
# times, whole processes on each capture:
#   tcpdump   tcpdump -r FILE -w /dev/null icmp   (C, libpcap, a compiled BPF
#             filter, no detection: the reference)
#   floor     bench/floor
#   w1, w2    icmpids replay --format none --workers 1 / 2  (every rule on)
#   base1, base2  the same with every rule switched off: what reading,
#             decoding, counting (and, with 2 workers, handing frames over)
#             cost before any detection
# and prints the medians (packets/s) and the wall-time ratios icmpids /
# tcpdump (goals: <= 0.9 on the mix, <= 1.2 on the flood), w1 / w2 (the
# speed-up of the second worker) and base1, base2 / tcpdump.
#
# Settings (environment):
#   MIX_COUNT=1000000   packets in the mix        MIX_RATE=200000  its pps
#   FLOOD_COUNT=2000000 packets in the flood      FLOOD_RATE=1000000
#   RUNS=5              interleaved runs per capture
#   WORKDIR=            where binaries and captures go (default: a temp dir
#                       in tmpfs, removed at the end)
#   SEED=1
# Usage: bench/compare.sh            (from anywhere inside the repository)
set -euo pipefail

RUNS=${RUNS:-5}
command -v tcpdump >/dev/null || { echo "compare.sh needs tcpdump (apt-get install tcpdump)" >&2; exit 2; }
. "$(dirname "$0")/common.sh"

workdir compare
build bench/floor cmd/icmpids cmd/icmpids-gen
captures
# base: every rule listed by "icmpids rules" ("name — title" lines) off.
base="$work/no-rules.yaml"
names=$("$work/icmpids" rules | sed -n 's/^\([a-z0-9_]*\) — .*/\1/p')
[[ -n $names ]] || { echo "compare.sh: icmpids rules listed no rule" >&2; exit 1; }
awk 'BEGIN {print "rules:"} {printf "  %s:\n    enabled: false\n", $1}' <<<"$names" >"$base"

declare -A times
tools=(tcpdump floor w1 w2 base1 base2)
for ((r = 1; r <= RUNS; r++)); do
	for cap in mix flood; do
		f="$work/$cap.pcap"
		times[$cap.tcpdump]+="$(wall tcpdump -r "$f" -w /dev/null icmp) "
		times[$cap.floor]+="$(wall "$work/floor" "$f") "
		times[$cap.w1]+="$(wall "$work/icmpids" replay --format none --workers 1 "$f") "
		times[$cap.w2]+="$(wall "$work/icmpids" replay --format none --workers 2 "$f") "
		times[$cap.base1]+="$(wall "$work/icmpids" replay --config "$base" --format none --workers 1 "$f") "
		times[$cap.base2]+="$(wall "$work/icmpids" replay --config "$base" --format none --workers 2 "$f") "
	done
	echo "# run $r/$RUNS done" >&2
done

printf '%-6s %9s %12s %12s %12s %12s %9s %9s %6s %7s %11s %11s\n' capture packets tcpdump_pps floor_pps w1_pps w2_pps w1/tcpd w2/tcpd goal w1/w2 base1/tcpd base2/tcpd
for cap in mix flood; do
	n=$MIX_COUNT goal=0.9
	[[ $cap == flood ]] && n=$FLOOD_COUNT goal=1.2
	declare -A med
	for t in "${tools[@]}"; do
		med[$t]=$(tr ' ' '\n' <<<"${times[$cap.$t]}" | grep . | median)
	done
	awk -v c="$cap" -v n="$n" -v td="${med[tcpdump]}" -v fl="${med[floor]}" -v w1="${med[w1]}" -v w2="${med[w2]}" -v g="$goal" \
		-v b1="${med[base1]}" -v b2="${med[base2]}" 'BEGIN {
		printf "%-6s %9d %12.0f %12.0f %12.0f %12.0f %9.2f %9.2f %6s %7.2f %11.2f %11.2f\n", c, n, n/(td/1e6), n/(fl/1e6), n/(w1/1e6), n/(w2/1e6), w1/td, w2/td, g, w1/w2, b1/td, b2/td
	}'
done
echo "# medians of $RUNS interleaved runs, whole-process wall time, captures in $work; ratios are wall time (lower is faster); icmpids: all rules (base: none), --format none" >&2
