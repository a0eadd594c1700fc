# Sourced by scripts/quickstart and scripts/test (from the checkout's top
# directory): make a virtualenv and install this checkout into it, editable,
# unless that is already done.
#
#   venv_install VENV EXTRAS [PIP-ARGS...]
#
# e.g. `venv_install .venv test -c scripts/test-constraints.txt` runs
# `pip install --quiet -c scripts/test-constraints.txt -e ".[test]"` (EXTRAS
# may be empty). Each install writes a line to VENV/daskflow-install.stamp:
# a hash of the checkout's path, setup.cfg and pyproject.toml; EXTRAS; a hash
# of the pip arguments and of any file among them (a constraints file). The
# next call with the same line skips pip, provided that daskflow in VENV still
# imports from this checkout and the requirements of daskflow and of EXTRAS are
# installed at versions that satisfy them. Lines for other EXTRAS stay valid
# while the first hash is the same.

_venv_hash() { sha256sum | cut -c1-16; }

# venv_installed VENV EXTRAS: daskflow in VENV comes from this checkout, with
# its requirements (and those of EXTRAS) present at acceptable versions
venv_installed() {
    "$1/bin/python" -I - "$(pwd -P)" "$2" >/dev/null 2>&1 <<'PY'
import importlib.metadata as md, importlib.util, os, sys
from packaging.requirements import Requirement

checkout, extra = sys.argv[1], sys.argv[2]
spec = importlib.util.find_spec("daskflow")
assert spec.origin == os.path.join(checkout, "daskflow", "__init__.py"), spec.origin
for req in map(Requirement, md.distribution("daskflow").requires or []):
    if req.marker and not req.marker.evaluate({"extra": extra}):
        continue
    assert req.specifier.contains(md.version(req.name), prereleases=True), req
PY
}

venv_install() {
    local venv=$1 extras=$2; shift 2
    local stamp=$venv/daskflow-install.stamp base args a
    base=$({ pwd -P; cat setup.cfg pyproject.toml; } | _venv_hash)
    args=$({
        printf '%s\n' "$@"
        for a in "$@"; do
            if [ -f "$a" ]; then cat "$a"; fi
        done
    } | _venv_hash)
    local line="$base ${extras:--} $args" start=$SECONDS
    if [ -x "$venv/bin/python" ] && grep -qxF "$line" "$stamp" 2>/dev/null \
        && venv_installed "$venv" "$extras"; then
        return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    echo "daskflow: installing this checkout into $venv (pip install${*:+ $*} -e .${extras:+[$extras]}) ..." >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$@" -e ".${extras:+[$extras]}"
    { grep "^$base " "$stamp" 2>/dev/null | grep -v "^$base ${extras:--} " || true
      echo "$line"; } >"$stamp.new"
    mv "$stamp.new" "$stamp"
    echo "daskflow: installed in $((SECONDS - start)) s" >&2
}
