#!/usr/bin/env bash
# bench/compare.sh — replay throughput of icmpids against the floor.
#
# Builds bench/floor (pcapgo + one DecodingLayerParser, no detection: the
# floor of issue 6), icmpids and icmpids-gen; generates two captures with the
# generator — a realistic mix (600 B average, 30 % ICMP, VLAN, IPv6, fragment
# trains) and an echo flood in which every packet has a new spoofed source —
# then runs the floor and `icmpids replay --format none --eve FILE` (every
# rule on, EVE to a file) interleaved RUNS times on each, timing whole
# processes, and prints the medians (packets/s) and the ratios
# icmpids / floor. Goals: >= 0.8 on the mix, >= 0.5 on the flood.
#
# Settings (environment):
#   MIX_COUNT=2000000   packets in the mix        MIX_RATE=200000  its pps
#   FLOOD_COUNT=10000000 packets in the flood     FLOOD_RATE=1000000
#   RUNS=5              interleaved runs per capture
#   WORKERS=1           icmpids --workers (engine.workers)
#   WORKDIR=            where binaries and captures go (default: a temp dir,
#                       removed at the end; set it to keep the captures)
#   SEED=1
# Usage: bench/compare.sh            (from anywhere inside the repository)
set -euo pipefail

MIX_COUNT=${MIX_COUNT:-2000000}
MIX_RATE=${MIX_RATE:-200000}
FLOOD_COUNT=${FLOOD_COUNT:-10000000}
FLOOD_RATE=${FLOOD_RATE:-1000000}
RUNS=${RUNS:-5}
WORKERS=${WORKERS:-1}
SEED=${SEED:-1}

repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "${WORKDIR:-}" ]]; then
	work=$WORKDIR
	mkdir -p "$work"
else
	work=$(mktemp -d /tmp/icmpids-compare.XXXXXX)
	trap 'rm -rf "$work"' EXIT
fi

echo "# building (go $(go env GOVERSION), $(nproc) CPUs)" >&2
(cd "$repo" && go build -o "$work/floor" ./bench/floor &&
	go build -o "$work/icmpids" ./cmd/icmpids &&
	go build -o "$work/icmpids-gen" ./cmd/icmpids-gen)

gen() { # name scenario count rate
	local f="$work/$1.pcap" stamp="$work/$1.params" want="$2 $3 $4 $SEED"
	# A capture cached in WORKDIR is reused only if made with the same
	# settings: the packets/s below are computed from the count.
	if [[ ! -s $f || -n "${REGEN:-}" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
		echo "# generating $1: $3 packets ($2, seed $SEED)" >&2
		"$work/icmpids-gen" -scenario "$2" -count "$3" -rate "$4" -seed "$SEED" -o "$f"
		echo "$want" >"$stamp"
	fi
}
gen mix mix "$MIX_COUNT" "$MIX_RATE"
gen flood spoofed-flood "$FLOOD_COUNT" "$FLOOD_RATE"

# wall seconds of one command, stdout/stderr discarded; fails loudly.
wall() {
	local t0 t1
	t0=$(date +%s%N)
	if ! "$@" >/dev/null 2>"$work/stderr"; then
		echo "failed: $*" >&2
		cat "$work/stderr" >&2
		exit 1
	fi
	t1=$(date +%s%N)
	echo "$(((t1 - t0) / 1000))" # microseconds
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A times
for ((r = 1; r <= RUNS; r++)); do
	for cap in mix flood; do
		f="$work/$cap.pcap"
		times[$cap.floor]+="$(wall "$work/floor" "$f") "
		rm -f "$work/eve.json"
		times[$cap.icmpids]+="$(wall "$work/icmpids" replay --format none --workers "$WORKERS" --eve "$work/eve.json" "$f") "
	done
	echo "# run $r/$RUNS done" >&2
done

printf '%-6s %10s %14s %14s %14s %7s %6s\n' capture packets floor_pps icmpids_pps icmpids_s ratio goal
for cap in mix flood; do
	n=$MIX_COUNT goal=0.8
	[[ $cap == flood ]] && n=$FLOOD_COUNT goal=0.5
	fl=$(tr ' ' '\n' <<<"${times[$cap.floor]}" | grep . | median)
	ic=$(tr ' ' '\n' <<<"${times[$cap.icmpids]}" | grep . | median)
	awk -v c="$cap" -v n="$n" -v fl="$fl" -v ic="$ic" -v g="$goal" 'BEGIN {
		fp = n / (fl / 1e6); ip = n / (ic / 1e6)
		printf "%-6s %10d %14.0f %14.0f %14.3f %7.2f %6s\n", c, n, fp, ip, ic / 1e6, ip / fp, g
	}'
done
echo "# medians of $RUNS interleaved runs, whole-process wall time; icmpids: all rules, --format none --eve FILE, --workers $WORKERS" >&2
