"""A request nobody waits for stops its work: the client hangs up, or TIMEOUT passes.

The work is a blur of sigma 31 over a 3200x2400 picture with alpha:
premultiplied, so in float, and just under the sigma where such a blur is
computed on a shrunk copy, so libvips convolves at full size (about 9 s of
CPU on one thread when left to finish). One processing thread and no queue:
while that work runs, any other image request is refused, so the next
request being served shows the worker was freed. The bounds below are
generous guards against a hang, not timings (those are in bench/).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import proxy.pipeline.encode as encoding
from proxy.pipeline.encode import EncodeRequest, EncoderSettings, encode_result
from proxy.pipeline.interrupt import Interrupted, stoppable
from tests.conftest import make_settings, signed
from tests.images import decode, encode, gradient, with_alpha
from tests.servers import Origin, running_apps, serve_pixelpipe

HEAVY = "/bl:31/plain/{}"


@pytest.fixture(scope="module")
def photo(origin: Origin) -> str:
    return origin.add("/deadline/photo.png", encode(with_alpha(gradient(3200, 2400), 200), "png"))


@pytest.fixture(scope="module")
def small(origin: Origin) -> str:
    return origin.add("/deadline/small.jpg", encode(gradient(64, 48), "jpg"))


def service_of(base: str):  # type: ignore[no-untyped-def]
    return running_apps[base].state.service  # type: ignore[attr-defined]


def wait_until_idle(base: str, guard: float = 60) -> None:
    service = service_of(base)
    deadline = time.monotonic() + guard
    while service.admission.state.running or service.admission.state.in_flight:
        assert time.monotonic() < deadline, f"still working: {service.admission.state}"
        time.sleep(0.05)


@pytest.fixture()
def one_thread() -> Iterator[str]:
    settings = make_settings(concurrency=1, requests_queue_size=0, timeout=60.0)
    with serve_pixelpipe(settings) as base:
        yield base


def test_an_abandoned_request_stops_its_work(one_thread: str, photo: str, small: str) -> None:
    base = one_thread
    with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.5) as impatient:
        impatient.get(base + signed(HEAVY.format(photo)))
    wait_until_idle(base)
    service = service_of(base)
    assert service.jobs_stopped == 1 and service.admission.state.reserved_bytes == 0
    answer = httpx.get(base + signed(f"/w:32/plain/{small}"), timeout=30)
    assert answer.status_code == 200 and decode(answer.content).width == 32


def test_a_request_past_its_deadline_answers_503_and_stops(
    photo: str, small: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(concurrency=1, requests_queue_size=0, timeout=1.0)
    with serve_pixelpipe(settings) as base, httpx.Client(timeout=60) as client:
        answer = client.get(base + signed(HEAVY.format(photo)))
        assert (answer.status_code, answer.text) == (503, "request timed out\n")
        wait_until_idle(base)
        assert service_of(base).jobs_stopped == 1
        served = client.get(base + signed(f"/w:32/plain/{small}"))
        assert served.status_code == 200
        # /info is bounded by the same deadline.
        info = client.get(base + "/info" + signed(HEAVY.format(photo)))
        assert (info.status_code, info.text) == (503, "request timed out\n")
        wait_until_idle(base)
    # A stopped run ends in an exception that nobody reads on purpose; asyncio
    # would log each as an ERROR with a traceback ("never retrieved").
    gc.collect()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_shared_job_goes_on_while_someone_waits(origin: Origin) -> None:
    # Two clients for one slow result: the first (who started the work) hangs
    # up, the second still gets it, and the work was not stopped.
    url = origin.add("/deadline/slow.jpg", encode(gradient(200, 150), "jpg"), delay=1.0)
    path = signed(f"/w:40/plain/{url}")
    settings = make_settings(concurrency=2, timeout=60.0)
    with serve_pixelpipe(settings) as base:
        failures: list[Exception] = []

        def impatient() -> None:
            try:
                httpx.get(base + path, timeout=0.3)
            except httpx.ReadTimeout as gave_up:
                failures.append(gave_up)

        first = threading.Thread(target=impatient)
        first.start()
        while not origin.hits["/deadline/slow.jpg"]:
            time.sleep(0.01)
        answer = httpx.get(base + path, timeout=30)
        first.join()
        assert len(failures) == 1
        assert answer.status_code == 200 and decode(answer.content).width == 40
        service = service_of(base)
        assert service.result_flights.abandoned == 0 and service.jobs_stopped == 0


def test_no_encode_starts_after_a_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # An encoder's own work (libaom, x265, libjxl) has no callback to stop it:
    # a run of several encodes ends between them. Here the hang-up lands during
    # the first of a byte budget's encodes (the wrapper sets the stop as that
    # encode ends, where a real hang-up's timing cannot be chosen).
    stop = threading.Event()
    real = encoding.encode
    encodes: list[int] = []

    def hung_up_during(*args: object, **kwargs: object) -> bytes:
        data = real(*args, **kwargs)  # type: ignore[arg-type]
        encodes.append(len(data))
        stop.set()
        return data

    monkeypatch.setattr(encoding, "encode", hung_up_during)
    image = decode(encode(gradient(320, 240), "png")).copy_memory()
    request = EncodeRequest(format="avif", quality=80, keep="none", max_bytes=200)
    with stoppable(stop), pytest.raises(Interrupted):
        encode_result(image, request, EncoderSettings())
    assert len(encodes) == 1
