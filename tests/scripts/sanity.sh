#!/usr/bin/env bash
# ansible-test sanity on a copy of the checkout at <tmp>/ansible_collections/capstan/release.
#
# ansible-test needs the collection under a real ansible_collections/<ns>/<name> path (a
# symlink is not enough), and it installs each sanity test's pinned requirements into its own
# virtualenv under ~/.ansible/test/venv. The first step of such an install downloads pip's
# bootstrap script from a host this machine cannot reach, so a stand-in is seeded in its cache.
#
# Usage: tests/scripts/sanity.sh [extra ansible-test sanity arguments]
# Env:   VENV (default .venv), SANITY_PYTHON (default 3.11), KEEP_SANITY_COPY=1 keeps the copy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
SANITY_PYTHON="${SANITY_PYTHON:-3.11}"

for tool in rsync git; do
    command -v "$tool" >/dev/null || { echo "sanity.sh: '$tool' is required (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$VENV/bin/ansible-test" ] || { echo "sanity.sh: $VENV/bin/ansible-test is missing: run 'make venv'" >&2; exit 1; }

# The pip version ansible-test bootstraps into its sanity virtualenvs decides the cache file name.
pip_version="$("$VENV/bin/python" - <<'PY'
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / '_internal' / 'python_requirements.py'
match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text())
if not match:
    raise SystemExit('sanity.sh: cannot find the pip version ansible-test pins in ' + str(source))
print(match.group(1))
PY
)"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
marker='# capstan.release offline stand-in for get-pip.py'
mkdir -p "$(dirname "$cache")"
if [ ! -e "$cache" ] || grep -qF "$marker" "$cache"; then
    cat > "$cache.tmp" <<PY
$marker (tests/scripts/sanity.sh writes it).
# ansible-test runs this as get-pip.py with pip install arguments, e.g.
#   --disable-pip-version-check pip==$pip_version --no-setuptools --no-wheel
# The virtualenv was made --without-pip: ensurepip installs the pip bundled with Python, then
# that pip installs the requested version through this machine's usual pip configuration.
import ensurepip
import os
import subprocess
import sys

saved_environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip strips PIP_* variables and points PIP_CONFIG_FILE at /dev/null: undo both, so the
# machine's pip.conf (indexes, find-links, constraints) applies again.
os.environ.clear()
os.environ.update(saved_environ)
if os.environ.get('PIP_CONFIG_FILE') == os.devnull:
    del os.environ['PIP_CONFIG_FILE']

args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
PY
    mv "$cache.tmp" "$cache"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/capstan-sanity.XXXXXX")"
if [ -z "${KEEP_SANITY_COPY:-}" ]; then
    trap 'rm -rf "$work"' EXIT
fi
copy="$work/ansible_collections/capstan/release"
mkdir -p "$copy"

# A real copy, minus what is not content: whatever .gitignore names, tools' state, and VCS data.
rsync -a \
    --exclude=/.git --exclude=/.venv --exclude=/.venv-stamp --exclude=/.collections \
    --exclude=/.ansible --exclude=/build --exclude=/tests/output \
    --filter=':- .gitignore' \
    "$ROOT/" "$copy/"

# With a git repository ansible-test lists files through git, so .gitignore'd files stay out.
git -C "$copy" init -q

echo "sanity: ansible-test sanity --local --python $SANITY_PYTHON in $copy (pip bootstrap: $cache)"
status=0
(
    cd "$copy"
    PATH="$VENV/bin:$PATH" "$VENV/bin/ansible-test" sanity --local --python "$SANITY_PYTHON" --color no "$@"
) || status=$?

# Keep the results beside the checkout for reading after the copy is gone.
if [ -d "$copy/tests/output" ]; then
    mkdir -p "$ROOT/tests/output"
    rm -rf "$ROOT/tests/output/sanity"
    cp -a "$copy/tests/output/." "$ROOT/tests/output/sanity/" 2>/dev/null || true
fi
echo "sanity: finished in ${SECONDS}s, exit status $status"
exit "$status"
