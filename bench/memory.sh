#!/usr/bin/env bash
# bench/memory.sh — peak RSS of icmpids replay under the memory attacks of
# issues 6 and 26, measured with /usr/bin/time -v (GNU time):
#   flood  FLOOD_COUNT (10,000,000) echo requests to one victim, each from a
#          new spoofed source;
#   frags  FRAG_COUNT (1,000,000) fragment trains that never complete (first
#          fragments only, each a new spoofed source and IP id);
#   ptb    PTB_COUNT (1,000,000) forged fragmentation-needed errors (MTU 68)
#          from one forger, each to a new random receiver of 10.0.0.0/8: one
#          spray attack (on the forger);
#   ptbs   the same, each error from a new spoofed reporter: one attack per
#          receiver, as many as engine.max_attacks lets open.
# Every rule is on, EVE goes to a file. For each it prints the peak RSS, the
# goal (<= LIMIT_MIB), the attacks started, whether the attack was reported
# (with an estimated source count where it has many), and the evictions
# icmpids counted.
#
# WORKERS is a list of worker counts (default "1 2 4 8"; 0 is icmpids's
# default, one engine per CPU): each case runs with each, and the last
# column compares its peak RSS with the first count's — the caps are the
# sensor's, not each engine's, so it must stay within RATIO (1.5)×.
#
# Settings (environment): FLOOD_COUNT, FRAG_COUNT, PTB_COUNT, WORKERS,
# WORKDIR (default: a temp dir in tmpfs, removed at the end; captures cached
# there are reused when made with the same settings), LIMIT_MIB (128),
# RATIO (1.5).
set -euo pipefail

FLOOD_COUNT=${FLOOD_COUNT:-10000000}
FRAG_COUNT=${FRAG_COUNT:-1000000}
PTB_COUNT=${PTB_COUNT:-1000000}
WORKERS=${WORKERS:-1 2 4 8}
LIMIT_MIB=${LIMIT_MIB:-128}
RATIO=${RATIO:-1.5}
[[ -x /usr/bin/time ]] || { echo "memory.sh needs GNU time (apt-get install time)" >&2; exit 2; }
command -v jq >/dev/null || { echo "memory.sh needs jq" >&2; exit 2; }

. "$(dirname "$0")/common.sh"

workdir memory
build cmd/icmpids cmd/icmpids-gen
gen flood spoofed-flood "$FLOOD_COUNT" 1000000
gen frags frag-flood "$FRAG_COUNT" 200000
gen ptb ptb-spray "$PTB_COUNT" 200000
gen ptbs ptb-spray "$PTB_COUNT" 200000 -sources "$PTB_COUNT"

fail=0
printf '%-6s %7s %10s %9s %8s %8s %6s %6s  %s\n' attack workers packets rss_mib seconds started ok x_first report
for name in flood frags ptb ptbs; do
	first=
	for w in $WORKERS; do
		rm -f "$work/$name.eve"
		/usr/bin/time -v "$work/icmpids" replay --workers "$w" --format none --eve "$work/$name.eve" "$work/$name.pcap" 2>"$work/$name.err" ||
			{ cat "$work/$name.err" >&2; exit 1; }
		kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/$name.err")
		secs=$(awk '/Elapsed \(wall clock\)/ {n = split($NF, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$work/$name.err")
		# (|| true: a run without evictions prints its row, marked NO,
		# instead of ending the script there under pipefail)
		frames=$(grep -o 'frames=[0-9]*' "$work/$name.err" | tail -1 | cut -d= -f2 || true)
		started=$(grep -o 'attacks_started=[0-9]*' "$work/$name.err" | tail -1 | cut -d= -f2 || true)
		evicted=$(grep -o ' evicted=[0-9]*' "$work/$name.err" | tail -1 | cut -d= -f2 || true)
		report=$(jq -r 'select(.alert.context.attack.phase == "end") |
			"\(.alert.context.attack.rule) on \(.alert.context.attack.target): \(.alert.context.attack.packets) packets, sources \(.alert.context.attack.sources) (estimated: \(.alert.context.attack.sources_estimated // false))\(if .alert.context.attack.receivers then ", receivers \(.alert.context.attack.receivers)" else "" end)"' "$work/$name.eve" | head -1)
		mib=$((kib / 1024))
		first=${first:-$kib}
		x=$(awk -v a="$kib" -v b="$first" 'BEGIN {printf "%.2f", a / b}')
		ok=yes
		if ((mib > LIMIT_MIB)) || [[ -z $report ]] || awk -v x="$x" -v r="$RATIO" 'BEGIN {exit !(x > r)}'; then ok=NO; fi
		# One spray attack; every other case fills a table: evictions counted.
		if [[ $name == ptb ]]; then [[ ${started:-} == 1 ]] || ok=NO; elif [[ -z ${evicted:-} ]]; then ok=NO; fi
		[[ $ok == yes ]] || fail=1
		printf '%-6s %7s %10s %9s %8s %8s %6s %6s  %s; evictions counted: %s\n' "$name" "$w" "$frames" "$mib" "$secs" "${started:-0}" "$ok" "$x" "${report:-no attack reported}" "${evicted:-none}"
	done
done
echo "# peak RSS by /usr/bin/time -v; goal <= $LIMIT_MIB MiB and <= ${RATIO}x the first worker count's, with the attack reported (and evictions counted where a table fills)" >&2
exit $fail
