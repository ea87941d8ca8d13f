#!/bin/sh
# Install pixelpipe and its runtime dependencies into a new virtual environment.
#
#   docker/install-runtime.sh SOURCE_DIR VENV_DIR
#
# The Dockerfile's build stage runs this, and so does tests/test_container.py
# in a fresh venv, so the image's install steps are tested without a Docker
# engine and cannot drift from what the test checks.
#
# Wheels only (libvips comes inside the pyvips-binary wheel), so no compiler
# is needed. Two pure-Python packages are built from source: pixelpipe itself
# and pyvips (whose newer releases are published as source only); neither
# compiles anything.
set -eu

src=${1:?usage: install-runtime.sh SOURCE_DIR VENV_DIR}
venv=${2:?usage: install-runtime.sh SOURCE_DIR VENV_DIR}

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --only-binary=:all: --no-binary=pyvips \
    "$src"
# Fail the build here, not at the first request, if libvips cannot be loaded.
"$venv/bin/python" -c "import pyvips, proxy.app; print('libvips', pyvips.version(0), pyvips.version(1), pyvips.version(2))"
