#!/usr/bin/env bash
# Builds OUTDIR/icmpids_VERSION_ARCH.deb: bash packaging/deb.sh OUTDIR
#
# The binary (cgo, against libpcap), its manual pages (generated from the
# commands' help: icmpids man) and bash completion are built here; the
# package is made by nfpm, pinned as a Go tool in packaging/nfpm/go.mod (a
# module of its own, so that nfpm's dependencies stay out of icmpids's
# module graph), so building needs nothing beyond the Go module proxy.
# Needs Go and libpcap-dev (as `go build` does).
set -euo pipefail
out=${1:?usage: bash packaging/deb.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

version=$(sed -n 's/^const version = "\(.*\)"$/\1/p' "$root/cmd/icmpids/version.go")
arch=$(go env GOARCH)
[ -n "$version" ] || { echo "deb.sh: no version in cmd/icmpids/version.go" >&2; exit 1; }

(cd "$root" && CGO_ENABLED=1 go build -o "$stage/icmpids" ./cmd/icmpids)
"$stage/icmpids" man "$stage/man"
gzip -9n "$stage"/man/*.1
"$stage/icmpids" completion bash >"$stage/icmpids.bash"
# The repository's unit, with the package's path of the binary.
sed 's#/usr/local/bin/icmpids#/usr/bin/icmpids#g' "$root/configs/icmpids.service" >"$stage/icmpids.service"
(cd "$root/packaging/nfpm" && go build -o "$stage/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm)

# nfpm.yaml lists each man page: write the contents list for them.
{
  for f in "$stage"/man/*.1.gz; do
    printf '  - src: %s\n    dst: /usr/share/man/man1/%s\n    file_info: {mode: 0644}\n' "$f" "$(basename "$f")"
  done
} >"$stage/man.yaml"
cat "$root/packaging/nfpm.yaml" "$stage/man.yaml" |
  sed -e "s#\${STAGE}#$stage#g" -e "s#\${ROOT}#$root#g" -e "s#\${VERSION}#$version#g" -e "s#\${ARCH}#$arch#g" >"$stage/nfpm.yaml"

deb="$out/icmpids_${version}_${arch}.deb"
"$stage/nfpm" package --config "$stage/nfpm.yaml" --packager deb --target "$deb" >&2
echo "$deb"
