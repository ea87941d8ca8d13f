"""The CDN configurations agree with the server's negotiation.

The CloudFront Function and the Cloudflare Worker run in Node (both are
JavaScript) on the eight browsers' Accept headers and on client hints; what
they keep must be what pixelpipe's own `accepted_image_types` and hint steps
make of them. The Worker's outgoing `fetch` is Node's global, replaced by
one that answers what it was asked (Cloudflare's network is not here).
Varnish's VCL is exercised by real Varnish in tests/test_varnish.py. Fastly's
VCL cannot run here: it is only checked to name the same formats.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from proxy.cdn import cloudflare, cloudfront, fastly, source_key
from proxy.negotiate import HINT_DPR_STEP, HINT_WIDTH_STEP, NegotiationPolicy, accepted_image_types
from tests.test_cli import PIXELPIPE, clean_env
from tests.test_varnish import BROWSERS

POLICY = NegotiationPolicy(auto_avif=True, auto_webp=True, auto_jxl=True, client_hints=True)


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make test installs npm): SKIPPING the JS checks")
    return node


def run_function(tmp_path: Path, headers: dict[str, str]) -> dict[str, str]:
    node = node_binary()
    script = tmp_path / "function.js"
    event = {"request": {"headers": {k: {"value": v} for k, v in headers.items()}}}
    script.write_text(
        cloudfront(POLICY)
        + f"\nvar out = handler({json.dumps(event)});\n"
        + "var flat = {};\nfor (var k in out.headers) flat[k] = out.headers[k].value;\n"
        + "console.log(JSON.stringify(flat));\n"
    )
    done = subprocess.run([node, str(script)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("browser", list(BROWSERS))
def test_cloudfront_keeps_what_the_negotiation_reads(tmp_path: Path, browser: str) -> None:
    accept = BROWSERS[browser]
    kept = run_function(tmp_path, {"accept": accept} if accept else {})
    named = accepted_image_types(accept)
    expected = ",".join(f"image/{fmt}" for fmt in POLICY.candidates() if fmt in named)
    assert kept.get("accept", "") == expected


def test_cloudfront_refuses_q_zero_and_rounds_hints_as_the_server(tmp_path: Path) -> None:
    kept = run_function(
        tmp_path,
        {
            "accept": "image/avif;q=0, image/webp;q=0.5",
            "sec-ch-dpr": "1.2",
            "dpr": "9",
            "sec-ch-width": "999",
            "width": "-3",
        },
    )
    assert kept == {
        "accept": "image/webp",
        "sec-ch-dpr": str(math.ceil(1.2 / HINT_DPR_STEP) * HINT_DPR_STEP),
        "sec-ch-width": str(math.ceil(999 / HINT_WIDTH_STEP) * HINT_WIDTH_STEP),
    }


def test_fastly_and_varnish_read_the_same_formats() -> None:
    text = fastly(POLICY)
    for fmt in POLICY.candidates():
        assert f'",image/{fmt}"' in text
    assert "std.atoi(req.http.Width)" in text


def test_cdn_config_through_the_command() -> None:
    out = subprocess.run(
        [PIXELPIPE, "cdn-config", "cloudfront"],
        env=clean_env(PIXELPIPE_AUTO_WEBP="true"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'var FORMATS = ["webp"];' in out
    bad = subprocess.run(
        [PIXELPIPE, "cdn-config", "varnish", "--backend", "nohost"],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr == "pixelpipe cdn-config: --backend is host:port\n"
    key = subprocess.run(
        [PIXELPIPE, "source-key", "https://example.com/a.jpg"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert key == source_key("https://example.com/a.jpg") + "\n"


@pytest.mark.parametrize("browser", ["Chrome", "Safari 13", "none"])
def test_the_cloudflare_worker_keys_the_cache_by_class(tmp_path: Path, browser: str) -> None:
    node = node_binary()
    worker = tmp_path / "worker.mjs"
    worker.write_text(cloudflare(POLICY))
    script = tmp_path / "run.mjs"
    accept = BROWSERS[browser]
    script.write_text(
        "import worker from './worker.mjs';\n"
        "globalThis.fetch = async (request) => new Response(JSON.stringify("
        "{url: request.url, accept: request.headers.get('accept')}));\n"
        f"const headers = {json.dumps({'accept': accept} if accept else {})};\n"
        "const answer = await worker.fetch(new Request("
        "'https://img.example.com/sig/rs:fit:300:300/plain/a.jpg', {headers}));\n"
        "console.log(await answer.text());\n"
    )
    done = subprocess.run([node, str(script)], capture_output=True, text=True, check=True)
    sent = json.loads(done.stdout)
    named = accepted_image_types(accept)
    kept = [fmt for fmt in POLICY.candidates() if fmt in named]
    assert sent["accept"] == (",".join(f"image/{fmt}" for fmt in kept) or None)
    assert sent["url"] == (
        "https://img.example.com/sig/rs:fit:300:300/plain/a.jpg?pp-class=" + ".".join(kept)
    )
