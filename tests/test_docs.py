from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import httpx
import pytest

from proxy.docs import render
from proxy.settings import SETTINGS, Settings
from proxy.tracing import OTEL_VARIABLES

README = Path(__file__).parent.parent / "README.md"


def test_readme_tables_match_the_declarations() -> None:
    text = README.read_text()
    assert render(text) == text, "run `make docs` to refresh the README tables"


ROOT = README.parent
# Names the docs use that are other programs' variables (or imgproxy's that
# pixelpipe does not read, named as such), not pixelpipe settings.
NOT_SETTINGS = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "LD_PRELOAD",
    "MALLOC_ARENA_MAX",
    "MALLOC_CONF",
    "PROMETHEUS_MULTIPROC_DIR",
    "SO_REUSEPORT",
    # httpx reads it: the CA bundle HTTPS sources are verified against
    # (tests/test_source_connections.py serves one through pixelpipe serve).
    "SSL_CERT_FILE",
    "VIPS_CONCURRENCY",  # libvips reads it; detection follows libvips (proxy/pipeline/faces.py)
    "IMGPROXY_USE_ETAG",  # "imgproxy: only with IMGPROXY_USE_ETAG"
}
SETTING_NAME = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![A-Za-z0-9_])")


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_settings_field_has_a_variable() -> None:
    # A field without a declaration is a setting no environment can set:
    # nine such fields were documented and silently ignored once.
    declared = {spec.attr for spec in SETTINGS}
    assert {f.name for f in fields(Settings)} - declared == set()


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_every_setting_the_docs_name_is_read(document: Path) -> None:
    ours = {spec.name for spec in SETTINGS}
    imgproxy = {name for spec in SETTINGS if spec.imgproxy for name in (spec.name, *spec.aliases)}
    foreign = {name for spec in SETTINGS for name in spec.others}
    unread = set()
    for name in set(SETTING_NAME.findall(document.read_text())) - NOT_SETTINGS:
        if name.startswith("PIXELPIPE_"):
            known = name.removeprefix("PIXELPIPE_") in ours
        elif name.startswith("IMGPROXY_"):
            known = name.removeprefix("IMGPROXY_") in imgproxy
        else:
            known = name in ours or name in foreign or name in OTEL_VARIABLES
        if not known:
            unread.add(name)
    assert unread == set(), f"{document.name} names settings that are never read"


def test_every_metric_a_scrape_shows_is_in_the_table(pixelpipe: str) -> None:
    # The table is made from proxy.monitoring.METRICS; a metric registered
    # but left out of that tuple would still be scraped, undocumented.
    scrape = httpx.get(pixelpipe + "/metrics", timeout=10).text
    exposed = set(re.findall(r"^# TYPE (pixelpipe_\w+) ", scrape, re.MULTILINE))
    # prometheus-client's `_created` timestamps (single-process mode) come with their metric.
    exposed = {name for name in exposed if not name.endswith("_created")}
    table = README.read_text().split("<!-- metrics-table -->")[1].split("<!-- /metrics-table")[0]
    assert exposed and {name for name in exposed if f"`{name}`" not in table} == set()


def test_security_md_limits_table_gives_the_real_defaults() -> None:
    table = (ROOT / "SECURITY.md").read_text().split("## Limits and their defaults")[1]
    specs = {spec.name: spec for spec in SETTINGS}
    defaults = {f.name: f for f in fields(Settings)}
    checked = 0
    for name, written in re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", table, re.MULTILINE):
        spec = specs[name]  # every row names a real setting
        text = written.split(" (")[0].strip().removesuffix(" s")
        if text in ("CPU count", "unset"):
            continue
        declared = defaults[spec.attr]
        default = declared.default
        assert spec.parser(text) == default, name
        checked += 1
    assert checked >= 15
