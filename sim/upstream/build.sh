#!/usr/bin/env bash
# Builds the upstream control plane that `kube-sim upstream` runs (DESIGN §5.1): etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kwok, from the Go modules pinned
# in this folder (`*/go.mod`, `*/go.sum`), into a cache outside the clone.
#
# Idempotent: the cache is keyed by the pins and this script, so a second call (or CI after a
# session on the same machine) only prints the directory. Progress goes to stderr; the last
# line on stdout is the directory of the binaries.
#
#   KUBE_SIM_UPSTREAM_CACHE   where builds are kept (default ${XDG_CACHE_HOME:-~/.cache}/kube-sim-upstream)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${KUBE_SIM_UPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-sim-upstream}
key=$(cat "$here"/build.sh "$here"/*/go.mod "$here"/*/go.sum | sha256sum | cut -c1-16)
bin=$cache/$key/bin
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

say() { echo "build.sh: $*" >&2; }

# One build at a time: a second caller (another test binary, another shell) waits for the first.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [[ -f $bin/.complete ]]; then
  say "up to date in $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { say "no Go toolchain on the PATH (DESIGN §5.1 needs Go 1.26)"; exit 1; }

# A half-finished earlier build is thrown away, never reused.
rm -rf "$bin.partial"
mkdir -p "$bin.partial"
started=$(date +%s)

# The module's pinned version of a dependency, e.g. `module_version kubernetes k8s.io/kubernetes`.
module_version() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

# Static binaries, as the upstream releases are; -trimpath keeps the cache's paths out of them.
export CGO_ENABLED=0

k8s=$(module_version kubernetes k8s.io/kubernetes)
minor=$(echo "$k8s" | cut -d. -f2)
# The binaries report their release (`kube-apiserver --version`, `/version`), not v0.0.0.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
say "kube-apiserver, kube-controller-manager, kube-scheduler $k8s (the longest part: about 5 minutes on 2 cores when Go's build cache is cold)"
(cd "$here/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$bin.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler)

etcd=$(module_version etcd go.etcd.io/etcd/server/v3)
say "etcd $etcd"
(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin.partial/etcd" go.etcd.io/etcd/server/v3)

kwok=$(module_version kwok sigs.k8s.io/kwok)
say "kwok $kwok"
(cd "$here/kwok" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$kwok" \
  -o "$bin.partial/kwok" sigs.k8s.io/kwok/cmd/kwok)

for b in "${binaries[@]}"; do
  [[ -x $bin.partial/$b ]] || { say "$b was not built"; exit 1; }
done
printf 'kubernetes %s\netcd %s\nkwok %s\n' "$k8s" "$etcd" "$kwok" > "$bin.partial/VERSIONS"
touch "$bin.partial/.complete"
rm -rf "$bin"
mv "$bin.partial" "$bin"
say "built in $(( $(date +%s) - started )) s: $(du -sh "$bin" | cut -f1) of binaries in $bin"
echo "$bin"
