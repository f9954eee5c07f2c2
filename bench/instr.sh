#!/usr/bin/env bash
# bench/instr.sh — what the engine and each rule cost on captures, in
# instructions per frame: deterministic (the same on a loaded machine as on
# a quiet one), where bench/rulecost's timings on a shared machine are not.
#
# For each capture it runs bench/rulecost -measure under valgrind's
# callgrind twice, one engine, every rule on: replaying the capture's first
# WARM frames, and its first MAX; the difference is what frames WARM..MAX
# cost once the tables are full. From callgrind's call graphs
# (bench/callgrind.awk) it prints, one column a capture:
#   engine        every instruction of the measured frames, per frame
#   base          the engine less every rule's own work (decode, classify
#                 dispatch, counting, the tracker outside the rules' calls)
#   nd_options    the packet's one ND option walk (Packet.NDOptions),
#                 counted apart from the rule that asks for it first
#   RULE          the inclusive cost of the engine's calls into the rule
#                 (Observe, Classify, Tick, Shadow, ObserveSource, ...),
#                 evidence reporting included, its ND walk excluded
#   x first       engine / the first capture's engine (list the ordinary
#                 flood first: the goal is at most 2)
# Rules that cost under 1 instruction per frame everywhere are left out.
#
# Settings (environment): WARM=10000, MAX=30000 frames (MAX-WARM are
# measured; a callgrind run takes ~10 s per 20,000 frames of the worst
# flood), RULECOST= a built bench/rulecost (default: built into WORKDIR).
# Usage: bench/instr.sh FILE.pcap...      (from anywhere inside the repository)
set -euo pipefail

WARM=${WARM:-10000}
MAX=${MAX:-30000}
[[ $# -gt 0 ]] || { echo "usage: bench/instr.sh FILE.pcap..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instr.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }
. "$(dirname "$0")/common.sh"

workdir instr
if [[ -z ${RULECOST:-} ]]; then
	build bench/rulecost
	RULECOST=$work/rulecost
fi

# cg LABEL N FILE: callgrind's counts of rulecost replaying FILE's first N
# frames, in $work/LABEL.cg, its rules in $work/LABEL.rules. GOGC=off and
# one P: no collector or idle thread runs to add its own instructions
# (runs then agree within ~0.1 %); asyncpreemptoff: callgrind does not
# survive Go's preemption signals.
cg() {
	GOGC=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --separate-callers5='*Packet).NDOptions' \
		--callgrind-out-file="$work/$1.cg" "$RULECOST" -measure "$2" -max "$MAX" "$3" \
		>"$work/$1.rules" 2>"$work/$1.vg" || { cat "$work/$1.vg" >&2; exit 1; }
	awk -f "$repo/bench/callgrind.awk" "$work/$1.rules" "$work/$1.cg" >"$work/$1.sum"
}

names=()
for f in "$@"; do
	name=$(basename "$f" .pcap)
	echo "# callgrind $name (frames $WARM..$MAX)" >&2
	cg "$name.a" "$WARM" "$f"
	cg "$name.b" "$MAX" "$f"
	# per frame: the difference of the two runs over the frames between
	paste "$work/$name.a.sum" "$work/$name.b.sum" |
		awk -v n=$((MAX - WARM)) '{ printf "%s %.0f\n", $1, ($4 - $2) / n }' >"$work/$name.instr"
	names+=("$name")
done

awk -v names="${names[*]}" '
	BEGIN { nc = split(names, cols, " ") }
	FNR == 1 { c++ }
	{
		if (!($1 in seen)) { seen[$1] = 1; order[++nr] = $1 }
		v[$1, c] = $2
		if ($2 + 0 >= 1 || $1 == "nd_options") keep[$1] = 1
	}
	END {
		w = 7
		for (i = 1; i <= nc; i++) if (length(cols[i]) > w) w = length(cols[i])
		printf "%-18s", "instr/frame"
		for (i = 1; i <= nc; i++) printf " %*s", w, cols[i]
		printf "\n"
		for (k = 1; k <= nr; k++) {
			l = order[k]
			if (!(l in keep)) continue
			printf "%-18s", l
			for (i = 1; i <= nc; i++) printf " %*s", w, ((l, i) in v ? v[l, i] : "-")
			printf "\n"
			if (l == "engine") {
				printf "%-18s", "x first"
				for (i = 1; i <= nc; i++) printf " %*.2f", w, v["engine", i] / v["engine", 1]
				printf "\n"
			}
		}
	}' $(for n in "${names[@]}"; do echo "$work/$n.instr"; done)
echo "# instructions per frame (callgrind), frames $WARM..$MAX of each capture, one engine, every rule on; RULE: the engine's calls into it, its evidence included" >&2
