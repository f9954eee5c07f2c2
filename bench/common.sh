# bench/common.sh — what bench/compare.sh and bench/rules.sh share: a work
# directory in tmpfs, the binaries, the two generated captures, timing.
# Sourced, not run. The caller sets MIX_COUNT, MIX_RATE, FLOOD_COUNT,
# FLOOD_RATE and SEED (defaults below) and may set WORKDIR (kept: captures
# cached there are reused when made with the same settings) and REGEN.

MIX_COUNT=${MIX_COUNT:-1000000}
MIX_RATE=${MIX_RATE:-200000}
FLOOD_COUNT=${FLOOD_COUNT:-2000000}
FLOOD_RATE=${FLOOD_RATE:-1000000}
SEED=${SEED:-1}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# workdir NAME: sets $work (WORKDIR, or a temp dir in /dev/shm when there is
# one, removed when the script exits).
workdir() {
	if [[ -n "${WORKDIR:-}" ]]; then
		work=$WORKDIR
		mkdir -p "$work"
	else
		local tmp=/tmp
		[[ -d /dev/shm && -w /dev/shm ]] && tmp=/dev/shm
		work=$(mktemp -d "$tmp/icmpids-$1.XXXXXX")
		trap 'rm -rf "$work"' EXIT
	fi
}

# build PKG...: go build each ./PKG into $work (named after its last element).
build() {
	echo "# building (go $(go env GOVERSION), $(nproc) CPUs)" >&2
	local p
	for p in "$@"; do
		(cd "$repo" && go build -o "$work/$(basename "$p")" "./$p")
	done
}

# gen NAME SCENARIO COUNT RATE [FLAG...]: $work/NAME.pcap from
# icmpids-gen (the FLAGs passed on to it).
gen() {
	local name=$1 scenario=$2 count=$3 rate=$4
	shift 4
	local f="$work/$name.pcap" stamp="$work/$name.params" want="$scenario $count $rate $SEED${*:+ $*}"
	# A capture cached in WORKDIR is reused only if made with the same
	# settings: the packets/s are computed from the count.
	if [[ ! -s $f || -n "${REGEN:-}" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
		echo "# generating $name: $count packets ($scenario${*:+ $*}, seed $SEED)" >&2
		"$work/icmpids-gen" -scenario "$scenario" -count "$count" -rate "$rate" -seed "$SEED" "$@" -o "$f"
		echo "$want" >"$stamp"
	fi
}

# captures: the realistic mix and the spoofed-source echo flood.
captures() {
	gen mix mix "$MIX_COUNT" "$MIX_RATE"
	gen flood spoofed-flood "$FLOOD_COUNT" "$FLOOD_RATE"
}

# wall CMD...: microseconds of wall time of one run, output discarded; fails
# loudly.
wall() {
	local t0 t1
	t0=$(date +%s%N)
	if ! "$@" >/dev/null 2>"$work/stderr"; then
		echo "failed: $*" >&2
		cat "$work/stderr" >&2
		exit 1
	fi
	t1=$(date +%s%N)
	echo "$(((t1 - t0) / 1000))"
}

# median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
