"""Settings, read once from the environment into one frozen, validated object.

Every setting is declared once in `SETTINGS` (variable name, parser, default,
whether imgproxy has it, a line of documentation). For a setting imgproxy also
has, `IMGPROXY_<NAME>` is read when `PIXELPIPE_<NAME>` is unset, so an imgproxy
deployment's environment carries over unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from proxy.options.formats import INPUT_FORMATS, OUTPUT_FORMATS, normalise_format_name
from proxy.pipeline.auto_quality import AUTO_QUALITY_SLOPES

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable, on one line."""


# --- value parsers: text -> value, raising ValueError with a short reason ---

_TRUE = {"1", "t", "true", "yes", "y", "on"}
_FALSE = {"0", "f", "false", "no", "n", "off"}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true or false")


def parse_non_negative_int(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None
    if value < 0:
        raise ValueError("expected a number >= 0")
    return value


def parse_positive_int(text: str) -> int:
    value = parse_non_negative_int(text)
    if value == 0:
        raise ValueError("expected a number > 0")
    return value


def int_between(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_non_negative_int(text)
        if not low <= value <= high:
            raise ValueError(f"expected {what} from {low} to {high}")
        return value

    return parse


_SIZE_UNITS = {
    "": 1,
    "k": 1000,
    "ki": 1024,
    "m": 1000**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gi": 1024**3,
}


def parse_size(text: str) -> int:
    """Bytes, plainly or with a unit as Kubernetes writes them: `268435456`, `256Mi`, `1Gi`."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]i?)?[bB]?\s*", text)
    if match is None:
        raise ValueError("expected a size in bytes, e.g. 268435456 or 256Mi")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]


def parse_allocator(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "jemalloc", "glibc"):
        raise ValueError("expected auto, jemalloc or glibc")
    return value


def parse_unsharp_mode(text: str) -> str:
    value = text.strip().lower()
    if value not in ("auto", "none", "always"):
        raise ValueError("expected auto, none or always")
    return value


parse_port = int_between(1, 65535, "a port number")
parse_quality = int_between(1, 100, "a quality")


def parse_non_negative_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError("expected a finite number >= 0")
    return value


def parse_positive_float(text: str) -> float:
    value = parse_non_negative_float(text)
    if value == 0:
        raise ValueError("expected a number > 0")
    return value


def parse_header_bytes(text: str) -> int:
    value = parse_size(text)
    if value < 1024:
        raise ValueError("expected at least 1024 bytes (browsers send more)")
    return value


def parse_hex_list(text: str) -> tuple[bytes, ...]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return tuple(bytes.fromhex(item) for item in items)
    except ValueError:
        raise ValueError("expected hex-encoded values separated by commas") from None


def _per_format(
    text: str, formats: Collection[str], parse_value: Callable[[str], T], what: str
) -> dict[str, T]:
    """`jpeg=70,avif=40` -> {"jpeg": parse_value("70"), ...}, formats limited to `formats`."""
    result: dict[str, T] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        fmt = normalise_format_name(name.strip())
        if not sep or fmt not in formats:
            raise ValueError(f"expected {what} pairs, got {item!r}")
        result[fmt] = parse_value(value)
    return result


def parse_format_quality(text: str) -> dict[str, int]:
    """`jpeg=70,avif=40` -> {"jpeg": 70, "avif": 40} (imgproxy's syntax)."""
    return _per_format(text, OUTPUT_FORMATS, parse_quality, "format=quality")


def parse_slope(text: str) -> float:
    value = parse_non_negative_float(text)
    if not 0 < value <= 1:
        raise ValueError(f"expected a slope above 0 and at most 1, got {text.strip()!r}")
    return value


def parse_auto_quality_slopes(text: str) -> dict[str, float]:
    """`jpeg=0.04,avif=0.06` -> {"jpeg": 0.04, "avif": 0.06}: formats quality:auto tunes."""
    return _per_format(text, tuple(AUTO_QUALITY_SLOPES), parse_slope, "format=slope")


def parse_presets(text: str) -> dict[str, tuple[str, ...]]:
    """`name=rs:fill:300:300/q:80,other=bl:2` -> {"name": ("rs:fill:300:300", "q:80"), ...}."""
    result: dict[str, tuple[str, ...]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, body = item.partition("=")
        segments = tuple(seg for seg in body.strip().split("/") if seg)
        if not sep or not name.strip() or not segments:
            raise ValueError(f"expected name=option/option pairs, got {item!r}")
        result[name.strip()] = segments
    return result


def parse_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected base64-encoded data") from None


def parse_file(text: str) -> str:
    path = os.path.realpath(text.strip())
    if not os.path.isfile(path):
        raise ValueError("expected an existing file")
    return path


def parse_opacity(text: str) -> float:
    value = parse_non_negative_float(text)
    if value > 1:
        raise ValueError("expected an opacity from 0 to 1")
    return value


def parse_format_list(text: str) -> tuple[str, ...]:
    formats = [normalise_format_name(part.strip()) for part in text.split(",") if part.strip()]
    unknown = [fmt for fmt in formats if fmt not in INPUT_FORMATS]
    if unknown:
        raise ValueError(f"unknown formats {', '.join(unknown)}")
    return tuple(sorted(set(formats)))


def parse_output_format_list(text: str) -> tuple[str, ...]:
    """An ordered list of formats pixelpipe writes: `jpeg,png,gif`."""
    formats = [normalise_format_name(part.strip()) for part in text.split(",") if part.strip()]
    unknown = [fmt for fmt in formats if fmt not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise ValueError(f"expected output formats, got {', '.join(unknown) or 'none'}")
    return tuple(dict.fromkeys(formats))


def parse_ssim(text: str) -> float:
    value = parse_non_negative_float(text)
    if not 0.5 <= value < 1:
        raise ValueError("expected an SSIM from 0.5 to below 1")
    return value


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_secret(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty secret")
    return text.strip()


def parse_result_dimension(text: str) -> int:
    value = parse_positive_int(text)
    if value > 16383:
        raise ValueError("expected a size from 1 to 16383 (WebP's limit)")
    return value


def parse_redis_url(text: str) -> str:
    url = text.strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected redis://host:port/db, rediss://… or unix://…")
    return url


def parse_endpoint(text: str) -> str:
    url = text.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError("expected an http(s):// URL")
    return url


def parse_json_object(text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ValueError("expected a JSON key (the service account file's contents)") from None
    if not isinstance(parsed, dict):
        raise ValueError("expected a JSON object")
    return text


def parse_storage_url(text: str) -> str:
    url = text.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("s3", "gs", "abs") or not rest.split("/")[0]:
        raise ValueError(
            "expected s3://bucket/prefix, gs://bucket/prefix or abs://container/prefix"
        )
    return url


def parse_url_replacements(text: str) -> tuple[tuple[str, str], ...]:
    """imgproxy's `regexp=replacement;regexp=replacement`; Go's `${1}`/`$1` become `\\g<1>`."""
    pairs = []
    for item in (part for part in text.split(";") if part.strip()):
        pattern, sep, replacement = item.partition("=")
        if not sep or not pattern:
            raise ValueError("expected regexp=replacement pairs separated by ';'")
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"bad regular expression {pattern!r}: {error}") from None
        python = re.sub(r"\$\{(\w+)\}|\$(\d+)", lambda m: f"\\g<{m[1] or m[2]}>", replacement)
        pairs.append((pattern, python))
    return tuple(pairs)


def parse_separator(text: str) -> str:
    if len(text) != 1 or text in "/@.%" or text.isalnum():
        raise ValueError("expected one punctuation character other than / @ . %")
    return text


def parse_path_prefix(text: str) -> str:
    prefix = "/" + text.strip().strip("/")
    if prefix == "/" or not re.fullmatch(r"/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", prefix):
        raise ValueError("expected a path such as /thumbor")
    return prefix


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ValueError("expected debug, info, warning or error")
    return level


def parse_log_format(text: str) -> str:
    value = text.strip().lower()
    # imgproxy's "pretty" is our text; "structured" and "gcp" are JSON-like enough.
    aliases = {"pretty": "text", "structured": "json", "gcp": "json"}
    value = aliases.get(value, value)
    if value not in {"text", "json"}:
        raise ValueError("expected json or text")
    return value


def parse_optional_seconds(text: str) -> int | None:
    """An optional Cache-Control duration: empty or negative means "not sent"."""
    stripped = text.strip()
    if not stripped or stripped.startswith("-"):
        return None
    return parse_non_negative_int(stripped)


def parse_directory(text: str) -> str:
    path = os.path.realpath(text.strip())
    if not os.path.isdir(path):
        raise ValueError("expected an existing directory")
    return path


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str  # the variable is PIXELPIPE_<NAME> (and IMGPROXY_<NAME> if imgproxy has it)
    attr: str
    parser: Callable[[str], Any]
    imgproxy: bool
    doc: str
    aliases: tuple[str, ...] = ()  # other imgproxy spellings read too, e.g. newer names
    others: tuple[str, ...] = ()  # other products' names read verbatim, e.g. thumbor's


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


@dataclass(frozen=True, slots=True)
class Settings:
    keys: tuple[bytes, ...] = ()
    salts: tuple[bytes, ...] = ()
    signature_size: int = 32
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=_cpu_count)
    concurrency: int = field(default_factory=_cpu_count)
    ttl: int = 31_536_000
    quality: int = 80
    format_quality: Mapping[str, int] = field(default_factory=lambda: {"avif": 65})
    max_src_file_size: int = 50 * 1024 * 1024
    max_src_resolution: float = 16.8
    download_timeout: float = 5.0
    timeout: float = 10.0
    max_redirects: int = 10
    user_agent: str = "pixelpipe"
    local_filesystem_root: str | None = None
    allow_loopback_source_addresses: bool = False
    allow_link_local_source_addresses: bool = False
    allow_private_source_addresses: bool = False
    allow_multicast_source_addresses: bool = False
    allowed_sources: tuple[str, ...] = ()
    allow_source_credentials: bool = False
    connect_timeout: float = 3.0
    secret: str | None = None
    requests_queue_size: int = 32
    memory_budget: int = 192 * 1024 * 1024
    allocator: str = "auto"
    reuse_port: bool = True
    max_result_dimension: int = 16383
    shutdown_timeout: float = 10.0
    shutdown_delay: float = 0.0
    max_header_bytes: int = 16384
    strip_metadata: bool = True
    keep_copyright: bool = True
    strip_color_profile: bool = True
    auto_rotate: bool = True
    return_attachment: bool = False
    presets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    enforce_thumbnail: bool = False
    skip_processing_formats: tuple[str, ...] = ()
    max_animation_frames: int = 100
    # Sources only imgproxy Pro reads: off unless switched on.
    enable_pdf: bool = False
    enable_psd: bool = False
    enable_raw: bool = False
    enable_video_thumbnails: bool = False
    video_thumbnail_second: float = 1.0
    smart_crop_face_detection: bool = True
    # imgproxy Pro's unsharp masking; none by default, so results match imgproxy's.
    unsharp_masking_mode: str = "none"
    unsharp_masking_weight: float = 1.0
    unsharp_masking_divider: float = 24.0
    open_telemetry_enable: bool = False
    sanitize_svg: bool = True
    watermark_data: bytes | None = None
    watermark_path: str | None = None
    watermark_url: str | None = None
    watermark_opacity: float = 1.0
    result_cache_bytes: int = 128 * 1024 * 1024
    result_cache_ttl: int = 3600
    source_cache_bytes: int = 64 * 1024 * 1024
    source_cache_ttl: int = 300
    redis_url: str | None = None
    redis_ttl: int = 86400
    redis_max_item_bytes: int = 5 * 1024 * 1024
    redis_timeout: float = 0.25
    # Object storage: sources (imgproxy's names) and the result store.
    use_s3: bool = False
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_endpoint_use_path_style: bool = True
    s3_assume_role_arn: str | None = None
    use_gcs: bool = False
    gcs_key: str | None = None
    gcs_endpoint: str | None = None
    use_abs: bool = False
    abs_name: str | None = None
    abs_key: str | None = None
    abs_endpoint: str | None = None
    result_storage: str | None = None
    result_storage_timeout: float = 1.0
    result_storage_queue_size: int = 256
    # imgproxy's URL settings.
    base_url: str = ""
    url_replacements: tuple[tuple[str, str], ...] = ()
    base64_url_includes_filename: bool = False
    arguments_separator: str = ":"
    allowed_processing_options: tuple[str, ...] = ()
    only_presets: bool = False
    # thumbor's URL dialect beside imgproxy's.
    thumbor_key: str | None = None
    thumbor_allow_unsafe: bool = False
    allow_unsigned: bool = False
    thumbor_prefix: str = ""
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = True
    metrics_port: int = 0
    # CDN caching.
    s_maxage: int | None = None
    stale_while_revalidate: int = 0
    cache_control_passthrough: bool = False
    error_ttl: int = 0
    # Format negotiation (imgproxy's names) and client hints.
    auto_webp: bool = False
    auto_avif: bool = False
    auto_jxl: bool = False
    enforce_webp: bool = False
    enforce_avif: bool = False
    enforce_jxl: bool = False
    preferred_formats: tuple[str, ...] = ("jpeg", "png", "gif")
    enable_client_hints: bool = False
    # Encoders.
    jpeg_progressive: bool = True
    png_quantize: bool = False
    png_quantization_colors: int = 256
    avif_speed: int = 6
    jxl_effort: int = 4
    webp_lossless_sources: bool = True
    # Perceptual auto quality and byte budgets.
    auto_quality: bool = False
    # Per format, overriding the calibrated defaults (proxy.pipeline.encode).
    auto_quality_slopes: Mapping[str, float] = field(default_factory=dict)
    auto_quality_ssim: float = 0.9
    auto_quality_min: int = 30
    auto_quality_max: int = 90
    max_bytes_min_quality: int = 10
    # The page at / and its signing endpoint; `pixelpipe serve --dev` turns them on.
    playground: bool = False

    @property
    def signing_enabled(self) -> bool:
        return bool(self.keys)

    @property
    def imgproxy_unsigned(self) -> bool:
        """imgproxy URLs go unchecked: no key at all (as imgproxy), or asked for.

        Signing is all or nothing: a thumbor key alone (what a thumbor user
        moving over sets) does not leave imgproxy's dialect open.
        """
        return not self.keys and (self.thumbor_key is None or self.allow_unsigned)

    def signing_summary(self) -> str:
        """One line for start-up: which URLs are checked, and what is open."""
        imgproxy = (
            f"imgproxy URLs signed ({len(self.keys)} key pair{'s' * (len(self.keys) > 1)})"
            if self.keys
            else "imgproxy URLs NOT signed (no PIXELPIPE_KEY/PIXELPIPE_SALT)"
            if self.imgproxy_unsigned
            else "imgproxy URLs refused (no PIXELPIPE_KEY/PIXELPIPE_SALT)"
        )
        if self.thumbor_key:
            thumbor = "thumbor URLs signed (THUMBOR_KEY)"
            if self.thumbor_allow_unsafe:
                thumbor += ", and /unsafe/ ones NOT signed (THUMBOR_ALLOW_UNSAFE)"
        elif self.thumbor_allow_unsafe:
            thumbor = "thumbor URLs only /unsafe/, NOT signed (THUMBOR_ALLOW_UNSAFE)"
        else:
            thumbor = "thumbor URLs off"
        return f"URL signatures: {imgproxy}; {thumbor}"

    @property
    def max_src_pixels(self) -> int:
        return int(self.max_src_resolution * 1_000_000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SETTINGS:
            variable, text = _lookup(env, spec)
            if text is None:
                continue
            try:
                values[spec.attr] = spec.parser(text)
            except ValueError as exc:
                raise SettingsError(f"{variable}: {exc} (got {text!r})") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if len(self.keys) != len(self.salts):
            raise SettingsError(
                "PIXELPIPE_KEY/PIXELPIPE_SALT: need as many salts as keys "
                f"(got {len(self.keys)} keys and {len(self.salts)} salts)"
            )
        if self.auto_quality_min > self.auto_quality_max:
            raise SettingsError(
                "PIXELPIPE_AUTO_QUALITY_MIN: must not exceed PIXELPIPE_AUTO_QUALITY_MAX"
            )
        if not 1 <= self.signature_size <= 32:
            raise SettingsError("PIXELPIPE_SIGNATURE_SIZE: expected a number from 1 to 32")
        uses_abs = self.use_abs or (self.result_storage or "").startswith("abs://")
        if uses_abs and not self.abs_name:
            raise SettingsError("PIXELPIPE_ABS_NAME: Azure Blob storage needs the account name")


def _lookup(env: Mapping[str, str], spec: SettingSpec) -> tuple[str, str | None]:
    own = f"PIXELPIPE_{spec.name}"
    if own in env:
        return own, env[own]
    if spec.imgproxy:
        for name in (spec.name, *spec.aliases):
            theirs = f"IMGPROXY_{name}"
            if theirs in env:
                return theirs, env[theirs]
    for name in spec.others:
        if name in env:
            return name, env[name]
    return own, None


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("KEY", "keys", parse_hex_list, True, "hex-encoded signing keys, comma-separated"),
    SettingSpec("SALT", "salts", parse_hex_list, True, "hex-encoded salts, one per key"),
    SettingSpec(
        "SIGNATURE_SIZE",
        "signature_size",
        parse_positive_int,
        True,
        "bytes of the HMAC digest kept in the signature",
    ),
    SettingSpec("HOST", "host", str.strip, False, "address `pixelpipe serve` listens on"),
    SettingSpec("PORT", "port", parse_port, False, "port `pixelpipe serve` listens on"),
    SettingSpec("WORKERS", "workers", parse_positive_int, False, "server processes"),
    SettingSpec(
        "CONCURRENCY",
        "concurrency",
        parse_positive_int,
        False,
        "image-processing threads per process",
    ),
    SettingSpec(
        "REQUESTS_QUEUE_SIZE",
        "requests_queue_size",
        parse_non_negative_int,
        True,
        "image jobs per process that may wait beyond the processing threads; more: 503",
    ),
    SettingSpec(
        "MEMORY_BUDGET",
        "memory_budget",
        parse_size,
        False,
        "memory per process that running image jobs reserve (each its estimated peak), "
        "e.g. `256Mi`; a job that does not fit waits",
    ),
    SettingSpec(
        "ALLOCATOR",
        "allocator",
        parse_allocator,
        False,
        "`pixelpipe serve`'s malloc: jemalloc (when installed), glibc with 2 arenas, or auto",
    ),
    SettingSpec(
        "REUSE_PORT",
        "reuse_port",
        parse_bool,
        False,
        "one SO_REUSEPORT listening socket per worker, so the kernel spreads connections",
    ),
    SettingSpec("TTL", "ttl", parse_non_negative_int, True, "Cache-Control max-age, seconds"),
    SettingSpec("QUALITY", "quality", parse_quality, True, "default output quality"),
    SettingSpec(
        "FORMAT_QUALITY",
        "format_quality",
        parse_format_quality,
        True,
        "per-format default quality, e.g. `jpeg=70,avif=40`",
    ),
    SettingSpec(
        "MAX_SRC_FILE_SIZE",
        "max_src_file_size",
        parse_non_negative_int,
        True,
        "largest source file in bytes; 0 = no limit",
    ),
    SettingSpec(
        "MAX_SRC_RESOLUTION",
        "max_src_resolution",
        parse_non_negative_float,
        True,
        "largest source resolution in megapixels, checked from the header",
    ),
    SettingSpec(
        "DOWNLOAD_TIMEOUT",
        "download_timeout",
        parse_non_negative_float,
        True,
        "seconds allowed for the whole source download",
    ),
    SettingSpec(
        "TIMEOUT",
        "timeout",
        parse_positive_float,
        True,
        "seconds an image or /info request may take in all (queue, download, processing); "
        "then its work is stopped and it answers 503",
    ),
    SettingSpec(
        "MAX_REDIRECTS",
        "max_redirects",
        parse_non_negative_int,
        True,
        "redirects followed when fetching a source",
    ),
    SettingSpec("USER_AGENT", "user_agent", str.strip, True, "User-Agent sent to origins"),
    SettingSpec(
        "LOCAL_FILESYSTEM_ROOT",
        "local_filesystem_root",
        parse_directory,
        True,
        "directory served as `local:///`; unset = local sources disabled",
    ),
    SettingSpec(
        "ALLOW_LOOPBACK_SOURCE_ADDRESSES",
        "allow_loopback_source_addresses",
        parse_bool,
        True,
        "allow sources on loopback addresses (127.0.0.0/8, ::1)",
    ),
    SettingSpec(
        "ALLOW_LINK_LOCAL_SOURCE_ADDRESSES",
        "allow_link_local_source_addresses",
        parse_bool,
        True,
        "allow sources on link-local addresses (169.254.0.0/16 with cloud metadata, fe80::/10)",
    ),
    SettingSpec(
        "ALLOW_PRIVATE_SOURCE_ADDRESSES",
        "allow_private_source_addresses",
        parse_bool,
        True,
        "allow sources on private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)",
    ),
    SettingSpec(
        "ALLOW_MULTICAST_SOURCE_ADDRESSES",
        "allow_multicast_source_addresses",
        parse_bool,
        False,
        "allow sources on multicast addresses (224.0.0.0/4, ff00::/8)",
    ),
    SettingSpec(
        "ALLOWED_SOURCES",
        "allowed_sources",
        parse_list,
        True,
        "the only source URL prefixes served, comma-separated; `*` matches anything but `/` "
        "(end a host with `/`); others are 403",
    ),
    SettingSpec(
        "ALLOW_SOURCE_CREDENTIALS",
        "allow_source_credentials",
        parse_bool,
        False,
        "allow `user:password@` in source URLs (sent to the origin as Basic auth)",
    ),
    SettingSpec(
        "CONNECT_TIMEOUT",
        "connect_timeout",
        parse_positive_float,
        False,
        "seconds one TCP/TLS connect to an origin may take",
    ),
    SettingSpec(
        "SECRET",
        "secret",
        parse_secret,
        True,
        "every image and /info request needs `Authorization: Bearer <secret>`, else 403",
    ),
    SettingSpec(
        "MAX_RESULT_DIMENSION",
        "max_result_dimension",
        parse_result_dimension,
        True,
        "largest width or height of a result; larger asks are refused (422)",
    ),
    SettingSpec(
        "MAX_HEADER_BYTES",
        "max_header_bytes",
        parse_header_bytes,
        False,
        "bytes of the request line, and of the headers, each; beyond: 414/431",
    ),
    SettingSpec(
        "STRIP_METADATA",
        "strip_metadata",
        parse_bool,
        True,
        "strip EXIF/XMP/IPTC from results",
    ),
    SettingSpec(
        "KEEP_COPYRIGHT",
        "keep_copyright",
        parse_bool,
        True,
        "keep the EXIF copyright when stripping",
    ),
    SettingSpec(
        "STRIP_COLOR_PROFILE",
        "strip_color_profile",
        parse_bool,
        True,
        "convert to sRGB and drop the ICC profile",
    ),
    SettingSpec("AUTO_ROTATE", "auto_rotate", parse_bool, True, "rotate by EXIF orientation"),
    SettingSpec(
        "RETURN_ATTACHMENT",
        "return_attachment",
        parse_bool,
        True,
        "`Content-Disposition: attachment` by default",
    ),
    SettingSpec(
        "PRESETS",
        "presets",
        parse_presets,
        True,
        "named option sets, `name=opt/opt,other=opt`; `default` applies to every request",
    ),
    SettingSpec(
        "ENFORCE_THUMBNAIL",
        "enforce_thumbnail",
        parse_bool,
        True,
        "use a HEIC/AVIF source's embedded thumbnail when it has one",
    ),
    SettingSpec(
        "SKIP_PROCESSING_FORMATS",
        "skip_processing_formats",
        parse_format_list,
        True,
        "source formats returned untouched, e.g. `svg,gif`",
    ),
    SettingSpec(
        "MAX_ANIMATION_FRAMES",
        "max_animation_frames",
        parse_positive_int,
        True,
        "frames of an animation processed; beyond it, the first frame only",
    ),
    SettingSpec(
        "ENABLE_PDF",
        "enable_pdf",
        parse_bool,
        False,
        "read PDF sources (a page, rendered at the size the result needs; `page`/`pg` "
        "chooses it, from 0); off: 422",
    ),
    SettingSpec(
        "ENABLE_PSD",
        "enable_psd",
        parse_bool,
        False,
        "read Photoshop PSD/PSB sources (the flattened composite the file stores); off: 422",
    ),
    SettingSpec(
        "ENABLE_RAW",
        "enable_raw",
        parse_bool,
        False,
        "read camera RAW sources (DNG, CR2, NEF, ARW, ORF, RW2, RAF, ...), developed with "
        "the camera's white balance; off: 422",
    ),
    SettingSpec(
        "ENABLE_VIDEO_THUMBNAILS",
        "enable_video_thumbnails",
        parse_bool,
        True,
        "read video sources (MP4, WebM, MOV, ...): the frame at `video_thumbnail_second`; off: 422",
    ),
    SettingSpec(
        "VIDEO_THUMBNAIL_SECOND",
        "video_thumbnail_second",
        parse_non_negative_float,
        True,
        "the second of a video whose frame is the source (the last frame when shorter); "
        "`vts` overrides it",
    ),
    SettingSpec(
        "OPEN_TELEMETRY_ENABLE",
        "open_telemetry_enable",
        parse_bool,
        True,
        "OpenTelemetry traces, one per request (configured by the standard OTEL_* variables: "
        "endpoint, protocol, headers, service name, sampler)",
    ),
    SettingSpec(
        "SMART_CROP_FACE_DETECTION",
        "smart_crop_face_detection",
        parse_bool,
        False,
        "smart crops (`g:sm`, `g:obj:face`, thumbor's `smart`) keep the faces found; "
        "off: libvips' attention crop only",
    ),
    SettingSpec(
        "UNSHARP_MASKING_MODE",
        "unsharp_masking_mode",
        parse_unsharp_mode,
        True,
        "when to sharpen with unsharp masking: `auto` (when the image was made smaller "
        "and `sharpen` is not set), `always` or `none` (imgproxy Pro's default is auto)",
    ),
    SettingSpec(
        "UNSHARP_MASKING_WEIGHT",
        "unsharp_masking_weight",
        parse_positive_float,
        True,
        "how much the neighbouring pixels count in unsharp masking; more: sharper",
    ),
    SettingSpec(
        "UNSHARP_MASKING_DIVIDER",
        "unsharp_masking_divider",
        parse_positive_float,
        True,
        "what unsharp masking's sum is divided by; less: sharper",
    ),
    SettingSpec(
        "SANITIZE_SVG",
        "sanitize_svg",
        parse_bool,
        True,
        "strip scripts and external references from SVG passed through; "
        "false refuses SVG pass-through",
    ),
    SettingSpec(
        "WATERMARK_DATA",
        "watermark_data",
        parse_base64,
        True,
        "watermark image, base64-encoded",
    ),
    SettingSpec("WATERMARK_PATH", "watermark_path", parse_file, True, "watermark image file"),
    SettingSpec(
        "WATERMARK_URL",
        "watermark_url",
        str.strip,
        True,
        "watermark image URL, fetched once at start-up",
    ),
    SettingSpec(
        "WATERMARK_OPACITY",
        "watermark_opacity",
        parse_opacity,
        True,
        "base watermark opacity; `wm`'s opacity multiplies it",
    ),
    SettingSpec(
        "RESULT_CACHE_BYTES",
        "result_cache_bytes",
        parse_non_negative_int,
        False,
        "in-process result cache size per process; 0 = off",
    ),
    SettingSpec(
        "RESULT_CACHE_TTL",
        "result_cache_ttl",
        parse_positive_int,
        False,
        "seconds a result stays in the in-process cache",
    ),
    SettingSpec(
        "SOURCE_CACHE_BYTES",
        "source_cache_bytes",
        parse_non_negative_int,
        False,
        "in-process cache of fetched originals per process; 0 = off",
    ),
    SettingSpec(
        "SOURCE_CACHE_TTL",
        "source_cache_ttl",
        parse_positive_int,
        False,
        "seconds a URL keeps pointing at its cached original",
    ),
    SettingSpec(
        "REDIS_URL",
        "redis_url",
        parse_redis_url,
        False,
        "shared result cache, e.g. `redis://redis:6379/0`; unset = off",
    ),
    SettingSpec(
        "REDIS_TTL", "redis_ttl", parse_positive_int, False, "seconds a result stays in Redis"
    ),
    SettingSpec(
        "REDIS_MAX_ITEM_BYTES",
        "redis_max_item_bytes",
        parse_positive_int,
        False,
        "larger results are not stored in Redis",
    ),
    SettingSpec(
        "REDIS_TIMEOUT",
        "redis_timeout",
        parse_non_negative_float,
        False,
        "seconds a Redis call may take before it counts as a miss",
    ),
    SettingSpec("USE_S3", "use_s3", parse_bool, True, "serve `s3://bucket/key` sources"),
    SettingSpec(
        "S3_ENDPOINT",
        "s3_endpoint",
        parse_endpoint,
        True,
        "S3 API endpoint for S3-compatible stores (MinIO, R2, ...); unset = AWS",
    ),
    SettingSpec(
        "S3_REGION",
        "s3_region",
        str.strip,
        True,
        "S3 region; unset = `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1",
    ),
    SettingSpec(
        "S3_ENDPOINT_USE_PATH_STYLE",
        "s3_endpoint_use_path_style",
        parse_bool,
        True,
        "`endpoint/bucket/key` requests; false = `bucket.endpoint/key` (virtual-host style)",
    ),
    SettingSpec(
        "S3_ASSUME_ROLE_ARN",
        "s3_assume_role_arn",
        str.strip,
        True,
        "IAM role assumed with the web identity token in `AWS_WEB_IDENTITY_TOKEN_FILE` (IRSA)",
    ),
    SettingSpec("USE_GCS", "use_gcs", parse_bool, True, "serve `gs://bucket/key` sources"),
    SettingSpec(
        "GCS_KEY",
        "gcs_key",
        parse_json_object,
        True,
        "Google service account key (JSON); unset = application default credentials",
    ),
    SettingSpec("GCS_ENDPOINT", "gcs_endpoint", parse_endpoint, True, "GCS API base URL"),
    SettingSpec("USE_ABS", "use_abs", parse_bool, True, "serve `abs://container/key` sources"),
    SettingSpec("ABS_NAME", "abs_name", str.strip, True, "Azure storage account name"),
    SettingSpec(
        "ABS_KEY",
        "abs_key",
        parse_secret,
        True,
        "Azure storage account key; unset = workload/managed identity from `AZURE_*`",
    ),
    SettingSpec(
        "ABS_ENDPOINT",
        "abs_endpoint",
        parse_endpoint,
        True,
        "Azure Blob endpoint incl. the account, e.g. for Azurite `http://host:10000/account`",
    ),
    SettingSpec(
        "RESULT_STORAGE",
        "result_storage",
        parse_storage_url,
        False,
        "results kept in a bucket shared by all pods, after memory and Redis: "
        "`s3://bucket/prefix`, `gs://…` or `abs://container/prefix`; unset = off",
    ),
    SettingSpec(
        "RESULT_STORAGE_TIMEOUT",
        "result_storage_timeout",
        parse_non_negative_float,
        False,
        "seconds a result-store read may take before it counts as a miss",
    ),
    SettingSpec(
        "RESULT_STORAGE_QUEUE_SIZE",
        "result_storage_queue_size",
        parse_positive_int,
        False,
        "result-store writes waiting per process; beyond it writes are dropped (counted)",
    ),
    SettingSpec(
        "BASE_URL",
        "base_url",
        str.strip,
        True,
        "prefix of every source URL that does not start with it (URLs then name paths)",
    ),
    SettingSpec(
        "URL_REPLACEMENTS",
        "url_replacements",
        parse_url_replacements,
        True,
        "source URL rewrites `regexp=replacement;...` applied in order, before BASE_URL",
    ),
    SettingSpec(
        "BASE64_URL_INCLUDES_FILENAME",
        "base64_url_includes_filename",
        parse_bool,
        True,
        "a segment after a base64 source is a file name for humans, ignored",
    ),
    SettingSpec(
        "ARGUMENTS_SEPARATOR",
        "arguments_separator",
        parse_separator,
        True,
        "the character between an option's name and arguments",
    ),
    SettingSpec(
        "ALLOWED_PROCESSING_OPTIONS",
        "allowed_processing_options",
        parse_list,
        True,
        "the only options URLs may use (presets may use any); others are 403",
    ),
    SettingSpec(
        "ONLY_PRESETS",
        "only_presets",
        parse_bool,
        True,
        "URLs name presets only: `/preset1:preset2/plain/...`",
    ),
    SettingSpec(
        "THUMBOR_KEY",
        "thumbor_key",
        parse_secret,
        False,
        "answer thumbor URLs signed with this key (HMAC-SHA1); thumbor's `SECURITY_KEY` "
        "is read too",
        others=("SECURITY_KEY",),
    ),
    SettingSpec(
        "THUMBOR_ALLOW_UNSAFE",
        "thumbor_allow_unsafe",
        parse_bool,
        False,
        "answer unsigned thumbor URLs (`/unsafe/...`); thumbor's `ALLOW_UNSAFE_URL` is read too",
        others=("ALLOW_UNSAFE_URL",),
    ),
    SettingSpec(
        "ALLOW_UNSIGNED",
        "allow_unsigned",
        parse_bool,
        False,
        "answer imgproxy URLs unsigned although a thumbor key is set (with no key at all "
        "they are unsigned anyway, as in imgproxy, and start-up warns)",
    ),
    SettingSpec(
        "THUMBOR_PREFIX",
        "thumbor_prefix",
        parse_path_prefix,
        False,
        "a path prefix, e.g. `/thumbor`, under which URLs are read as thumbor's only; "
        "unset: a URL that is not imgproxy's is tried as thumbor's",
    ),
    SettingSpec("LOG_LEVEL", "log_level", parse_log_level, True, "debug, info, warning, error"),
    SettingSpec(
        "LOG_FORMAT",
        "log_format",
        parse_log_format,
        True,
        "`json` (one object per line) or `text`; imgproxy's `pretty`/`structured` are read too",
    ),
    SettingSpec(
        "ACCESS_LOG", "access_log", parse_bool, False, "one log line per image/info request"
    ),
    SettingSpec(
        "METRICS_PORT",
        "metrics_port",
        int_between(0, 65535, "a port number"),
        False,
        "serve `/metrics` on this port only; 0: on the main port",
    ),
    SettingSpec(
        "SHUTDOWN_TIMEOUT",
        "shutdown_timeout",
        parse_non_negative_float,
        False,
        "seconds in-flight requests get to finish after SIGTERM",
    ),
    SettingSpec(
        "SHUTDOWN_DELAY",
        "shutdown_delay",
        parse_non_negative_float,
        False,
        "seconds `/ready` fails while still serving after SIGTERM, so load balancers "
        "stop sending first",
    ),
    SettingSpec(
        "S_MAXAGE",
        "s_maxage",
        parse_optional_seconds,
        False,
        "Cache-Control `s-maxage` for shared caches (CDNs), seconds",
    ),
    SettingSpec(
        "STALE_WHILE_REVALIDATE",
        "stale_while_revalidate",
        parse_non_negative_int,
        False,
        "Cache-Control `stale-while-revalidate`, seconds; 0: not sent",
    ),
    SettingSpec(
        "CACHE_CONTROL_PASSTHROUGH",
        "cache_control_passthrough",
        parse_bool,
        True,
        "answer with the source's `Cache-Control`/`Expires` when it sent them",
    ),
    SettingSpec(
        "ERROR_TTL",
        "error_ttl",
        parse_non_negative_int,
        False,
        "seconds a 4xx answer (not 429) may be cached; 0: `no-store`; 5xx and 429 never",
    ),
    SettingSpec(
        "AUTO_WEBP",
        "auto_webp",
        parse_bool,
        True,
        "no format in the URL and `Accept` lists image/webp: answer WebP",
        ("ENABLE_WEBP_DETECTION",),
    ),
    SettingSpec(
        "AUTO_AVIF",
        "auto_avif",
        parse_bool,
        True,
        "no format in the URL and `Accept` lists image/avif: answer AVIF (preferred over WebP)",
        ("ENABLE_AVIF_DETECTION",),
    ),
    SettingSpec(
        "AUTO_JXL",
        "auto_jxl",
        parse_bool,
        True,
        "no format in the URL and `Accept` lists image/jxl: answer JPEG XL (preferred over "
        "AVIF and WebP, as imgproxy; never for animations)",
    ),
    SettingSpec(
        "ENFORCE_JXL",
        "enforce_jxl",
        parse_bool,
        True,
        "JPEG XL whenever `Accept` lists it, even over a format in the URL",
    ),
    SettingSpec(
        "ENFORCE_WEBP",
        "enforce_webp",
        parse_bool,
        True,
        "WebP whenever `Accept` lists it, even over a format in the URL",
    ),
    SettingSpec(
        "ENFORCE_AVIF",
        "enforce_avif",
        parse_bool,
        True,
        "AVIF whenever `Accept` lists it, even over a format in the URL",
    ),
    SettingSpec(
        "PREFERRED_FORMATS",
        "preferred_formats",
        parse_output_format_list,
        True,
        "no format asked or negotiated: the source's if listed, else the first listed "
        "that can carry the image's alpha/animation",
    ),
    SettingSpec(
        "ENABLE_CLIENT_HINTS",
        "enable_client_hints",
        parse_bool,
        True,
        "`DPR`/`Sec-CH-DPR` and `Width`/`Sec-CH-Width` set dpr and width when the URL does not",
    ),
    SettingSpec(
        "JPEG_PROGRESSIVE",
        "jpeg_progressive",
        parse_bool,
        True,
        "progressive JPEG for results of about 500x500 and more (with trellis there)",
    ),
    SettingSpec(
        "PNG_QUANTIZE", "png_quantize", parse_bool, True, "PNG as a palette image (lossy, small)"
    ),
    SettingSpec(
        "PNG_QUANTIZATION_COLORS",
        "png_quantization_colors",
        int_between(2, 256, "a number of colours"),
        True,
        "palette size when PNG_QUANTIZE is on",
    ),
    SettingSpec(
        "AVIF_SPEED",
        "avif_speed",
        int_between(0, 9, "a speed"),
        True,
        "AVIF encoder speed, 0 (slowest, smallest) to 9 (fastest)",
    ),
    SettingSpec(
        "JXL_EFFORT",
        "jxl_effort",
        int_between(1, 9, "an effort"),
        True,
        "JPEG XL encoder effort, 1 (fastest) to 9 (smallest)",
    ),
    SettingSpec(
        "WEBP_LOSSLESS_SOURCES",
        "webp_lossless_sources",
        parse_bool,
        False,
        "WebP from a PNG/GIF source: also try lossless, unless a fast estimate on a sample "
        "rules it out, and keep the smaller",
    ),
    SettingSpec(
        "AUTO_QUALITY",
        "auto_quality",
        parse_bool,
        False,
        "`quality:auto` for every URL that sets no quality",
    ),
    SettingSpec(
        "AUTO_QUALITY_SLOPES",
        "auto_quality_slopes",
        parse_auto_quality_slopes,
        False,
        "`quality:auto` stops adding bytes where SSIM gained per bit per pixel falls "
        "below this, per format (lower: more bytes, higher quality; COMPRESSION.md)",
    ),
    SettingSpec(
        "AUTO_QUALITY_SSIM",
        "auto_quality_ssim",
        parse_ssim,
        False,
        "`quality:auto`'s safety floor: a result below this SSIM (luma, against the "
        "unencoded result) takes `AUTO_QUALITY_MAX`",
    ),
    SettingSpec(
        "AUTO_QUALITY_MIN",
        "auto_quality_min",
        parse_quality,
        False,
        "lowest quality `quality:auto` may choose",
    ),
    SettingSpec(
        "AUTO_QUALITY_MAX",
        "auto_quality_max",
        parse_quality,
        False,
        "highest quality `quality:auto` may choose",
    ),
    SettingSpec(
        "PLAYGROUND",
        "playground",
        parse_bool,
        False,
        "the playground page at `/` and its signing endpoint (on with `pixelpipe serve --dev`; "
        "never on unless asked)",
    ),
    SettingSpec(
        "MAX_BYTES_MIN_QUALITY",
        "max_bytes_min_quality",
        parse_quality,
        False,
        "`max_bytes` lowers quality to this at most, then downscales",
    ),
)


_DEFAULT_TEXT = {
    "keys": "unset: signatures not checked",
    "salts": "unset",
    "workers": "CPU count",
    "concurrency": "CPU count",
    "local_filesystem_root": "unset: `local://` off",
    "presets": "none",
    "skip_processing_formats": "none",
    "watermark_data": "unset",
    "watermark_path": "unset",
    "watermark_url": "unset",
    "allowed_sources": "unset: any",
    "secret": "unset",
    "redis_url": "unset: off",
    "result_storage": "unset: off",
    "thumbor_key": "unset: no signed thumbor URLs",
    "base_url": "unset",
    "url_replacements": "none",
    "allowed_processing_options": "unset: all",
    "thumbor_prefix": "unset",
    "s3_endpoint": "unset: AWS",
    "s3_region": "unset: from `AWS_REGION`",
    "s3_assume_role_arn": "unset",
    "gcs_key": "unset: default credentials",
    "gcs_endpoint": "unset: Google",
    "abs_name": "unset",
    "abs_key": "unset: identity from `AZURE_*`",
    "abs_endpoint": "unset: `https://NAME.blob.core.windows.net`",
    "s_maxage": "unset: not sent",
    "memory_budget": "192Mi",
    "auto_quality_slopes": ",".join(f"{k}={v}" for k, v in AUTO_QUALITY_SLOPES.items()),
}


def _default_text(attr: str) -> str:
    if attr in _DEFAULT_TEXT:
        return _DEFAULT_TEXT[attr]
    value = next(f for f in fields(Settings) if f.name == attr)
    default = value.default_factory() if callable(value.default_factory) else value.default
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, Mapping):
        return ",".join(f"{k}={v}" for k, v in default.items())
    return str(default)


def settings_table() -> str:
    """The README's settings table, made from `SETTINGS` so the two cannot drift."""
    rows = [
        "| variable | imgproxy name read too | default | meaning |",
        "|---|---|---|---|",
    ]
    for spec in SETTINGS:
        fallback = (
            ", ".join(f"`IMGPROXY_{name}`" for name in (spec.name, *spec.aliases))
            if spec.imgproxy
            else "—"
        )
        rows.append(
            f"| `PIXELPIPE_{spec.name}` | {fallback} | {_default_text(spec.attr)} | {spec.doc} |"
        )
    return "\n".join(rows)


def _check_table() -> None:
    # Every declared spec names a real field; a typo would otherwise be silent.
    names = {f.name for f in fields(Settings)}
    for spec in SETTINGS:
        assert spec.attr in names, spec.attr


_check_table()
