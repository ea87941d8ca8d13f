#!/bin/sh
# Install pixelpipe and its runtime dependencies into a virtual environment.
#
#   docker/install-runtime.sh SOURCE_DIR VENV_DIR [all|deps|app]
#
#   all   (the default) a new virtual environment with both of the below
#   deps  a new virtual environment with pyproject.toml's dependencies only
#   app   pixelpipe itself into VENV_DIR, whose dependencies are installed
#
# The Dockerfile runs `deps` and `app` as two steps, so a change to the code
# reuses the dependencies' layer (pip runs again only when pyproject.toml
# changes); tests/test_container.py runs `all` in a fresh venv, so the image's
# install steps are tested without a Docker engine and cannot drift from what
# the test checks.
#
# Wheels only (libvips comes inside the pyvips-binary wheel), so no compiler
# is needed. Two pure-Python packages are built from source: pixelpipe itself
# and pyvips (whose newer releases are published as source only); neither
# compiles anything.
set -eu

src=${1:?usage: install-runtime.sh SOURCE_DIR VENV_DIR [all|deps|app]}
venv=${2:?usage: install-runtime.sh SOURCE_DIR VENV_DIR [all|deps|app]}
part=${3:-all}

pip_install() {
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --only-binary=:all: --no-binary=pyvips "$@"
}

case $part in
    all | deps)
        python3 -m venv "$venv"
        # The dependency list straight from pyproject.toml (tomllib: Python 3.11).
        "$venv/bin/python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
            "$src/pyproject.toml" > "$venv/requirements.txt"
        pip_install --requirement "$venv/requirements.txt"
        rm "$venv/requirements.txt"
        ;;
    app) ;;
    *) echo "install-runtime.sh: unknown part '$part' (all, deps or app)" >&2; exit 2 ;;
esac

case $part in
    all | app)
        pip_install --no-deps "$src"
        # Fail the build here, not at the first request, if libvips cannot be loaded.
        "$venv/bin/python" -c "import pyvips, proxy.app; print('libvips', pyvips.version(0), pyvips.version(1), pyvips.version(2))"
        ;;
esac
