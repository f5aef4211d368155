#!/usr/bin/env bash
# Build the collection tarball, then prove it installs and loads on its own: install it into an
# empty collections path and list its plugins from there, with no checkout in sight.
#
# Usage: tests/scripts/build.sh [output dir, default build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${VENV:-$ROOT/.venv}/bin"
out="$(cd "$ROOT" && mkdir -p "${1:-build}" && cd "${1:-build}" && pwd)"

cd "$ROOT"
rm -f "$out"/capstan-release-*.tar.gz
"$BIN/ansible-galaxy" collection build --force --output-path "$out" .
tarballs=("$out"/capstan-release-*.tar.gz)
if [ "${#tarballs[@]}" -ne 1 ] || [ ! -f "${tarballs[0]}" ]; then
    echo "build.sh: expected one tarball in $out" >&2
    exit 1
fi
tarball="${tarballs[0]}"

# Nothing made by tools or kept out by build_ignore may ride along.
if tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.git|\.collections|\.ansible|tests/output|build|__pycache__)(/|$)'; then
    echo "build.sh: $tarball contains the paths above, which build_ignore should keep out" >&2
    exit 1
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/capstan-build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# Run from the scratch dir, with no ansible.cfg, so nothing from the checkout is found.
cd "$scratch"
: > "$scratch/ansible.cfg"
export ANSIBLE_CONFIG="$scratch/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$scratch/collections" ANSIBLE_HOME="$scratch/home"
"$BIN/ansible-galaxy" collection install --offline -p "$scratch/collections" "$tarball"
installed="$scratch/collections/ansible_collections/capstan/release"
[ -f "$installed/MANIFEST.json" ] || { echo "build.sh: install left no MANIFEST.json in $installed" >&2; exit 1; }
"$BIN/ansible-galaxy" collection verify --offline capstan.release
"$BIN/ansible-galaxy" collection list capstan.release
# Every module must load its documentation from the installed copy.
"$BIN/ansible-doc" -t module -l capstan.release
echo "build: $tarball ($(du -h "$tarball" | cut -f1)) builds, installs, verifies"
