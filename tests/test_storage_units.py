"""Object storage without a server: bucket URLs, settings, result objects, the write queue."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from proxy.cache import CachedResult
from proxy.errors import InvalidURL
from proxy.result_store import ResultStore, result_attributes, result_from_object
from proxy.settings import Settings, SettingsError
from proxy.storage import ObjectLocation, ObjectStores, parse_object_url
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://photos/a/b.jpg", ObjectLocation("s3", "photos", "a/b.jpg")),
        ("s3://photos/a%20b.jpg", ObjectLocation("s3", "photos", "a b.jpg")),
        ("s3://photos/b.jpg?versionId=3HL4k", ObjectLocation("s3", "photos", "b.jpg", "3HL4k")),
        ("s3://photos/b.jpg?3HL4k", ObjectLocation("s3", "photos", "b.jpg", "3HL4k")),
        ("gs://my.bucket/x/y.png?1712", ObjectLocation("gs", "my.bucket", "x/y.png", "1712")),
        ("abs://container/deep/k.webp", ObjectLocation("abs", "container", "deep/k.webp")),
    ],
)
def test_bucket_urls_parse_as_imgproxy_reads_them(url: str, expected: ObjectLocation) -> None:
    assert parse_object_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "s3://photos/",
        "s3://photos",
        "s3://ab/k.jpg",  # too short for any service's bucket names
        "s3://bad_bucket!/k.jpg",
        "s3://-leading/k.jpg",
        "s3://user:pw@photos/k.jpg",
        "s3://photos.example.com:443/k.jpg",
        "http://photos/k.jpg",
    ],
)
def test_malformed_bucket_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURL):
        parse_object_url(url)


def test_imgproxy_storage_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "IMGPROXY_USE_S3": "true",
            "IMGPROXY_S3_ENDPOINT": "http://127.0.0.1:9000/",
            "IMGPROXY_S3_REGION": "eu-west-1",
            "IMGPROXY_S3_ENDPOINT_USE_PATH_STYLE": "false",
            "IMGPROXY_USE_GCS": "true",
            "IMGPROXY_GCS_KEY": '{"type": "service_account"}',
            "IMGPROXY_USE_ABS": "true",
            "IMGPROXY_ABS_NAME": "account",
            "IMGPROXY_ABS_KEY": "a2V5",
            "PIXELPIPE_RESULT_STORAGE": "s3://results/pixelpipe/",
        }
    )
    assert settings.use_s3 and settings.use_gcs and settings.use_abs
    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.s3_region == "eu-west-1" and not settings.s3_endpoint_use_path_style
    assert settings.abs_name == "account" and settings.abs_key == "a2V5"
    assert settings.result_storage == "s3://results/pixelpipe"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PIXELPIPE_RESULT_STORAGE": "ftp://bucket/p"}, "RESULT_STORAGE"),
        ({"PIXELPIPE_RESULT_STORAGE": "s3://"}, "RESULT_STORAGE"),
        ({"PIXELPIPE_GCS_KEY": "not json"}, "GCS_KEY"),
        ({"PIXELPIPE_S3_ENDPOINT": "127.0.0.1:9000"}, "S3_ENDPOINT"),
        ({"PIXELPIPE_USE_ABS": "true"}, "ABS_NAME"),
        ({"PIXELPIPE_RESULT_STORAGE": "abs://container/p"}, "ABS_NAME"),
    ],
)
def test_bad_storage_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_configured_clients_are_built_at_start() -> None:
    # Building a client makes no request: nothing here touches the network.
    ObjectStores(make_settings(use_s3=True, use_abs=True, abs_name="account")).check()
    with pytest.raises(SettingsError, match="USE_GCS"):
        ObjectStores(make_settings(use_gcs=True, gcs_key="{}")).check()


def test_result_objects_round_trip() -> None:
    result = CachedResult(
        b"\x89PNG...",
        "image/png",
        '"abc-123"',
        "inline; filename=\"caf\u00e9.png\"; filename*=UTF-8''caf%C3%A9.png",
        (("x-pixelpipe-encodes", "3"),),
        (("cache-control", "max-age=60"),),
    )
    attributes = result_attributes(result)
    assert attributes["Content-Type"] == "image/png"
    assert attributes["pixelpipeetag"] == '"abc-123"'
    assert all(value.isascii() for value in attributes.values())  # header-safe everywhere
    assert result_from_object(result.body, attributes) == result
    # An object someone else wrote under the prefix is a miss, not an error.
    assert result_from_object(b"x", {"Content-Type": "image/png"}) is None
    assert result_from_object(b"x", {**attributes, "pixelpipeheaders": "!!"}) is None


def _dropped() -> float:
    return REGISTRY.get_sample_value("pixelpipe_result_store_total", {"outcome": "dropped"}) or 0.0


def test_a_full_write_queue_drops_and_counts() -> None:
    stores = ObjectStores(make_settings(s3_endpoint="http://127.0.0.1:9", s3_region="us-east-1"))

    async def scenario() -> tuple[int, float]:
        # No writers started: the queue only fills, nothing is sent anywhere.
        store = ResultStore(stores.store("s3", "results"), "p", timeout=0.1, queue_size=2)
        before = _dropped()
        result = CachedResult(b"x", "image/png", '"e"', "inline")
        for n in range(5):
            store.put(f"key-{n}", result)
        return store.pending, _dropped() - before

    pending, dropped = asyncio.run(scenario())
    assert (pending, dropped) == (2, 3)
