#!/usr/bin/env bash
# bench/worst.sh — the worst-input suite: what the floods an attacker can
# craft cost icmpids against tcpdump, and what each rule costs on them, in
# one run and two tables.
#
# Builds icmpids, icmpids-gen and bench/rulecost; generates with the
# generator (in tmpfs, /dev/shm when there is one), COUNT packets each at
# RATE packets/s unless said otherwise:
#   mix-floods      the realistic mix (MIX_COUNT at MIX_RATE) with 10 % of
#                   its packets in spoofed echo-flood episodes carrying
#                   non-ping data (icmpids-gen -scenario mix -floods 0.1)
#   flood-data      a spoofed flood of FLOOD_COUNT packets, all carrying
#                   the same 56 random-looking bytes (echo-same-data)
#   echo-zero       echo requests, 56 zero bytes, a new spoofed source each
#                   (the ordinary case the others are held against)
#   echo-zero-1400  1,400 zero bytes           echo-zero-tail  1,399 then 0x01
#   random-pairs    1,400 random bytes, a new (source, destination) per packet
#   random-data     1,000 spoofed sources, new random 64 bytes each (issue 26)
#   unreach-tcp     port unreachables quoting TCP (TTL 64)
#   error6-ext      ICMPv6 errors quoting IPv6 behind 8 extension headers
#   ptb-spray       forged fragmentation-needed (MTU 68), each to a new
#                   receiver of 10/8 (issue 26's spray, at RATE)
#   redirect        ICMP redirects, a new gateway and destination each
#   ra-options      RAs: a prefix option and 180 unknown 8-byte options
#   nd-options      NS/NA with 180 unknown options
#   ra-prefixes     RAs: 32 prefix options (new /64s each), a new router each
#   ipip4           echo inside IP-in-IP x4
#   deep-stack      echo behind 8 VLAN tags, GRE, VXLAN and IP-in-IP
#   frag-trains     every 1,400-byte echo a complete train of two fragments
#   carpet-8        a spoofed carpet over 10.0.0.0/8
#   carpet-sources  a carpet over a /24 from 300 spoofed sources, each
#                   hitting many hosts (issue 26)
# then times whole processes, interleaved, RUNS times:
#   tcpdump   tcpdump -r FILE -w /dev/null icmp   (the reference)
#   icmpids   icmpids replay --format none   (default workers, every rule)
#   base      the same with BASE_BIN, when set (an icmpids binary built from
#             another revision: before/after in one run)
# and prints the medians and the ratio icmpids / tcpdump with the goal of
# issue 27 (mix 1.0, flood-data 1.4, every crafted flood 2.5), and the
# ratio of CPU time (user + system; steadier than wall time on a busy
# machine, but it counts a second worker's spinning too); then runs
# bench/rulecost (one capture at a time, its first RULECOST_MAX frames,
# RULECOST_RUNS rounds) and prints what each rule costs in ns per packet
# on each capture, one column a capture (goal: no rule above 100; the
# engine at most twice its cost on echo-zero); then bench/instr.sh:
# the engine's and each rule's instructions per frame on each capture
# (callgrind; deterministic, so it holds on a loaded machine), echo-zero
# first.
#
# Settings (environment):
#   COUNT=300000        packets per crafted flood    RATE=1000000  their pps
#   MIX_COUNT=1000000   MIX_RATE=200000              the mix
#   FLOOD_COUNT=2000000 FLOOD_RATE=1000000           flood-data
#   RUNS=3              interleaved runs per capture (0: the instruction
#                       table only; then COUNT=30000 MIX_COUNT=30000
#                       FLOOD_COUNT=30000 suffice)
#   RULECOST_RUNS=3     rulecost rounds (0: no rulecost table)
#   INSTR=1             the instruction table (0: none; needs valgrind)
#   INSTR_WARM=10000 INSTR_MAX=30000   its frames (bench/instr.sh's WARM, MAX)
#   RULECOST_MAX=100000 frames of each capture rulecost loads
#   BASE_BIN=           an icmpids binary to time beside this tree's
#   ONLY=               space-separated capture names to run (default all)
#   WORKDIR=, SEED=1, REGEN=   as in bench/common.sh
# Usage: bench/worst.sh            (from anywhere inside the repository)
set -euo pipefail

RUNS=${RUNS:-3}
RULECOST_RUNS=${RULECOST_RUNS:-3}
RULECOST_MAX=${RULECOST_MAX:-100000}
INSTR=${INSTR:-1}
BASE_BIN=${BASE_BIN:-}
[[ -z $BASE_BIN || -x $BASE_BIN ]] || { echo "worst.sh: BASE_BIN=$BASE_BIN is not an executable" >&2; exit 2; }
COUNT=${COUNT:-300000}
RATE=${RATE:-1000000}
command -v tcpdump >/dev/null || { echo "worst.sh needs tcpdump (apt-get install tcpdump)" >&2; exit 2; }
. "$(dirname "$0")/common.sh"

# name | goal | scenario count rate [flags]
suite=(
	"mix-floods|1.0|mix $MIX_COUNT $MIX_RATE -floods 0.1"
	"flood-data|1.4|echo-same-data $FLOOD_COUNT $FLOOD_RATE"
	"echo-zero|2.5|echo-zero $COUNT $RATE"
	"echo-zero-1400|2.5|echo-zero $COUNT $RATE -payload 1400"
	"echo-zero-tail|2.5|echo-zero-tail $COUNT $RATE"
	"random-pairs|2.5|echo-random-pairs $COUNT $RATE"
	"random-data|2.5|echo-random-data $COUNT $RATE"
	"unreach-tcp|2.5|unreach-tcp $COUNT $RATE"
	"error6-ext|2.5|error6-ext $COUNT $RATE"
	"ptb-spray|2.5|ptb-spray $COUNT $RATE"
	"redirect|2.5|redirect $COUNT $RATE"
	"ra-options|2.5|ra-options $COUNT $RATE"
	"nd-options|2.5|nd-options $COUNT $RATE"
	"ra-prefixes|2.5|ra-prefixes $COUNT $RATE"
	"ipip4|2.5|ipip4 $COUNT $RATE"
	"deep-stack|2.5|deep-stack $COUNT $RATE"
	"frag-trains|2.5|frag-trains $COUNT $RATE"
	"carpet-8|2.5|spoofed-carpet $COUNT $RATE -prefix 10.0.0.0/8"
	"carpet-sources|2.5|spoofed-carpet $COUNT $RATE -prefix 10.20.0.0/24 -sources 300"
)

workdir worst
build cmd/icmpids cmd/icmpids-gen bench/rulecost
names=()
declare -A goal
for row in "${suite[@]}"; do
	IFS='|' read -r name g spec <<<"$row"
	if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then
		continue
	fi
	# shellcheck disable=SC2086 # spec is words: scenario count rate flags
	gen "$name" $spec
	names+=("$name")
	goal[$name]=$g
done
[[ ${#names[@]} -gt 0 ]] || { echo "worst.sh: ONLY=$ONLY names no capture" >&2; exit 2; }

# timed CMD...: "wall_us cpu_us" of one run (cpu: user + system), output
# discarded; fails loudly.
timed() {
	local TIMEFORMAT='%R %U %S' out
	if ! out=$({ time "$@" >/dev/null 2>"$work/stderr"; } 2>&1); then
		echo "failed: $*" >&2
		cat "$work/stderr" >&2
		exit 1
	fi
	awk '{printf "%d %d\n", $1 * 1e6, ($2 + $3) * 1e6}' <<<"$out"
}

# instr: the instruction table (bench/instr.sh), echo-zero first.
instr() {
	((INSTR > 0)) || return 0
	local files=() n
	[[ -s $work/echo-zero.pcap ]] && files+=("$work/echo-zero.pcap")
	for n in "${names[@]}"; do
		[[ $n == echo-zero ]] || files+=("$work/$n.pcap")
	done
	echo
	WORKDIR=$work/instr RULECOST=$work/rulecost WARM=${INSTR_WARM:-10000} MAX=${INSTR_MAX:-30000} "$repo/bench/instr.sh" "${files[@]}"
}

if ((RUNS == 0)); then
	instr
	exit 0
fi

declare -A wall cpu
tools=(tcpdump icmpids)
[[ -n $BASE_BIN ]] && tools+=(base)
for ((r = 1; r <= RUNS; r++)); do
	for name in "${names[@]}"; do
		f="$work/$name.pcap"
		for t in "${tools[@]}"; do
			case $t in
			tcpdump) read -r w c < <(timed tcpdump -r "$f" -w /dev/null icmp) ;;
			icmpids) read -r w c < <(timed "$work/icmpids" replay --format none "$f") ;;
			base) read -r w c < <(timed "$BASE_BIN" replay --format none "$f") ;;
			esac
			wall[$name.$t]+="$w "
			cpu[$name.$t]+="$c "
		done
	done
	echo "# run $r/$RUNS done" >&2
done

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
hdr='%-15s %9s %11s %11s %8s %5s %4s %9s'
[[ -n $BASE_BIN ]] && hdr+=' %11s %10s'
# shellcheck disable=SC2059 # the format is built above
printf "$hdr\n" capture packets tcpdump_ms icmpids_ms ratio goal ok cpu_ratio ${BASE_BIN:+base_ms base_ratio}
for name in "${names[@]}"; do
	n=$(awk '{print $2}' "$work/$name.params")
	awk -v c="$name" -v n="$n" -v td="$(med "${wall[$name.tcpdump]}")" -v ic="$(med "${wall[$name.icmpids]}")" \
		-v tc="$(med "${cpu[$name.tcpdump]}")" -v icc="$(med "${cpu[$name.icmpids]}")" -v g="${goal[$name]}" \
		-v b="${BASE_BIN:+$(med "${wall[$name.base]:-}")}" 'BEGIN {
		r = ic / td
		printf "%-15s %9d %11.1f %11.1f %8.2f %5s %4s %9.2f", c, n, td / 1000, ic / 1000, r, g, (r <= g ? "yes" : "NO"), icc / (tc > 0 ? tc : 1000)
		if (b != "") printf " %11.1f %10.2f", b / 1000, b / td
		printf "\n"
	}'
done
echo "# medians of $RUNS interleaved runs, whole-process wall time ($(nproc) CPUs, default workers, --format none); ratio: icmpids / tcpdump wall time (lower is faster); cpu_ratio: the same of user + system time${BASE_BIN:+; base: $BASE_BIN}" >&2

if ((RULECOST_RUNS == 0)); then
	instr
	exit 0
fi
# rulecost, one capture at a time (each is held in memory), merged into
# one table: a row per rule, a column per capture.
for name in "${names[@]}"; do
	echo "# rulecost $name" >&2
	"$work/rulecost" -cpu -runs "$RULECOST_RUNS" -max "$RULECOST_MAX" "$work/$name.pcap" 2>/dev/null | grep -v '^#' >"$work/$name.cost"
done
echo
awk -v names="${names[*]}" '
	BEGIN { nc = split(names, cols, " ") }
	FNR == 1 { c++; next } # the header row
	{
		label = $1
		for (i = 2; i < NF; i++) label = label " " $i
		if (!(label in seen)) { seen[label] = 1; order[++nr] = label }
		v[label, c] = $NF
	}
	END {
		printf "%-18s", "ns/packet"
		for (i = 1; i <= nc; i++) printf " %*s", (length(cols[i]) > 7 ? length(cols[i]) : 7), cols[i]
		printf "\n"
		for (k = 1; k <= nr; k++) {
			l = order[k]
			printf "%-18s", l
			for (i = 1; i <= nc; i++) printf " %*s", (length(cols[i]) > 7 ? length(cols[i]) : 7), ((l, i) in v ? v[l, i] : "-")
			printf "\n"
		}
	}' $(for name in "${names[@]}"; do echo "$work/$name.cost"; done)
echo "# bench/rulecost, median of $RULECOST_RUNS rounds over the first $RULECOST_MAX frames of each capture, thread CPU time, in memory, one engine: a rule's cost is what turning it off saves; rows in the first capture's order (costliest first)" >&2
instr
