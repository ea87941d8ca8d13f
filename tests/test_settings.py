from __future__ import annotations

import pytest

from proxy.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.keys == () and not settings.signing_enabled
    assert settings.ttl == 31_536_000
    assert settings.quality == 80
    assert settings.allow_loopback_source_addresses is False
    assert settings.workers >= 1 and settings.concurrency >= 1


def test_pixelpipe_variables_are_read() -> None:
    settings = Settings.from_env(
        {"PIXELPIPE_KEY": "aa,bb", "PIXELPIPE_SALT": "cc,dd", "PIXELPIPE_TTL": "60"}
    )
    assert settings.keys == (b"\xaa", b"\xbb")
    assert settings.salts == (b"\xcc", b"\xdd")
    assert settings.ttl == 60


def test_imgproxy_variables_carry_over_when_ours_are_unset() -> None:
    settings = Settings.from_env({"IMGPROXY_TTL": "120", "IMGPROXY_QUALITY": "70"})
    assert (settings.ttl, settings.quality) == (120, 70)


def test_pixelpipe_variable_wins_over_imgproxy() -> None:
    assert Settings.from_env({"IMGPROXY_TTL": "120", "PIXELPIPE_TTL": "5"}).ttl == 5


def test_settings_imgproxy_lacks_have_no_imgproxy_fallback() -> None:
    # IMGPROXY_WORKERS means something else in imgproxy (concurrency), so it is not read.
    assert Settings.from_env({"IMGPROXY_WORKERS": "7"}).workers == Settings.from_env({}).workers
    assert Settings.from_env({"IMGPROXY_RESULT_CACHE_BYTES": "5"}).result_cache_bytes != 5


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"PIXELPIPE_TTL": "soon"}, "PIXELPIPE_TTL"),
        ({"PIXELPIPE_TTL": "-1"}, "PIXELPIPE_TTL"),
        ({"IMGPROXY_QUALITY": "101"}, "IMGPROXY_QUALITY"),
        ({"PIXELPIPE_KEY": "zz", "PIXELPIPE_SALT": "aa"}, "PIXELPIPE_KEY"),
        ({"PIXELPIPE_KEY": "aa"}, "PIXELPIPE_KEY/PIXELPIPE_SALT"),
        ({"PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES": "maybe"}, "ALLOW_LOOPBACK"),
        ({"PIXELPIPE_FORMAT_QUALITY": "jpeg70"}, "PIXELPIPE_FORMAT_QUALITY"),
        ({"PIXELPIPE_FORMAT_QUALITY": "pdf=70"}, "PIXELPIPE_FORMAT_QUALITY"),
        ({"PIXELPIPE_PRESETS": "novalue"}, "PIXELPIPE_PRESETS"),
        ({"PIXELPIPE_PORT": "70000"}, "PIXELPIPE_PORT"),
        ({"PIXELPIPE_LOCAL_FILESYSTEM_ROOT": "/no/such/dir"}, "LOCAL_FILESYSTEM_ROOT"),
        ({"PIXELPIPE_SIGNATURE_SIZE": "40"}, "SIGNATURE_SIZE"),
        ({"PIXELPIPE_MAX_SRC_RESOLUTION": "nan"}, "MAX_SRC_RESOLUTION"),
        ({"PIXELPIPE_LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable_on_one_line(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_presets_and_format_quality_parse() -> None:
    settings = Settings.from_env(
        {
            "IMGPROXY_PRESETS": "default=q:70,thumb=rs:fill:100:100/g:sm",
            "IMGPROXY_FORMAT_QUALITY": "jpg=70,webp=60",
        }
    )
    assert settings.presets == {"default": ("q:70",), "thumb": ("rs:fill:100:100", "g:sm")}
    assert settings.format_quality == {"jpeg": 70, "webp": 60}


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.ttl = 1  # type: ignore[misc]
