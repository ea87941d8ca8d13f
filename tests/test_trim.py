"""imgproxy's trim: libvips' find_trim box, searched from the edges inward
(proxy/pipeline/trim_box.py), and what a trimming job holds in memory."""

from __future__ import annotations

import io
import random
from pathlib import Path

import httpx
import numpy as np
import pyvips

from proxy.pipeline.trim_box import find_trim
from tests.conftest import signed
from tests.footprints import assert_under_estimates
from tests.images import decode, encode, mean_abs_difference, photo_like
from tests.servers import Origin


def scattered(rng: random.Random) -> tuple[pyvips.Image, float, tuple[float, ...]]:
    """A background with a few rectangles and specks (some a median removes),
    grey or colour, 8- or 16-bit, long and thin or square; a threshold and the
    background to search for (now and then not the picture's own)."""
    width, height = rng.randint(3, 300), rng.randint(3, 300)
    if rng.random() < 0.3:
        height = rng.randint(3, 8)
    bands = rng.choice([1, 3])
    top = 65535 if rng.random() < 0.25 else 255
    background = [rng.choice([top, 0, rng.randint(0, top)]) for _ in range(bands)]
    image = pyvips.Image.black(width, height, bands=bands) + background
    for _ in range(rng.randint(0, 4)):
        colour = [rng.randint(0, top) for _ in range(bands)]
        left, up = rng.randint(0, width - 1), rng.randint(0, height - 1)
        image = image.draw_rect(colour, left, up, rng.randint(1, width), rng.randint(1, height))
    for _ in range(rng.randint(0, 20)):
        colour = [rng.randint(0, top) for _ in range(bands)]
        left, up = rng.randint(0, width - 1), rng.randint(0, height - 1)
        image = image.draw_rect(colour, left, up, rng.randint(1, 3), rng.randint(1, 3), fill=True)
    image = image.cast("ushort" if top > 255 else "uchar").copy_memory()
    threshold = rng.choice([0, 5, 10, 40, 300])
    if rng.random() < 0.2:
        background = [rng.randint(0, top) for _ in range(bands)]
    return image, threshold, tuple(float(b) for b in background)


def test_the_edge_search_finds_libvips_box() -> None:
    """120 seeded pictures: the box is libvips' find_trim's to the pixel, and
    both call a picture that is all background empty."""
    rng = random.Random(20261130)
    for _ in range(120):
        image, threshold, background = scattered(rng)
        expected = tuple(image.find_trim(threshold=threshold, background=list(background)))
        found = find_trim(image, threshold, background)
        if 0 in expected[2:]:
            assert 0 in found[2:], (image.width, image.height, threshold, expected, found)
        else:
            assert found == expected, (image.width, image.height, threshold, expected, found)


def test_pictures_narrower_than_the_median_are_trimmed_too() -> None:
    """libvips' find_trim refuses a picture under 3 px on a side (the request
    answered 422). Its rule, computed here in numpy: a 3x3 median with the
    edges repeated, then any band farther than the threshold from the
    background; the box of what is left."""
    rng = random.Random(20261201)
    for _ in range(60):
        image, threshold, background = scattered(rng)
        thin = image.crop(0, 0, min(image.width, rng.randint(1, 2)), image.height)
        if rng.random() < 0.5:
            thin = thin.rot90()
        pixels = thin.numpy().reshape(thin.height, thin.width, thin.bands).astype(float)
        padded = np.pad(pixels, ((1, 1), (1, 1), (0, 0)), mode="edge")
        windows = [
            padded[y : y + thin.height, x : x + thin.width] for y in range(3) for x in range(3)
        ]
        median = np.median(np.stack(windows), axis=0)
        mask = (np.abs(median - np.array(background)) > threshold).any(axis=2)
        found = find_trim(thin, threshold, background)
        if not mask.any():
            assert 0 in found[2:], (thin.width, thin.height, found)
            continue
        rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        expected = (columns[0], rows[0], columns[-1] + 1 - columns[0], rows[-1] + 1 - rows[0])
        assert found == tuple(int(v) for v in expected), (thin.width, thin.height, found)


def test_a_rule_one_pixel_wide_is_trimmed_and_a_dot_is_kept(
    origin: Origin, client: httpx.Client, pixelpipe: str
) -> None:
    """A 1x40 rule by Pillow, white at both ends and red between, and a 1x1 dot."""
    from PIL import Image

    rule = Image.new("RGB", (1, 40), (255, 255, 255))
    for y in range(10, 30):
        rule.putpixel((0, y), (220, 20, 20))
    dot = Image.new("RGB", (1, 1), (220, 20, 20))
    for name, picture, size in (("rule", rule, (1, 20)), ("dot", dot, (1, 1))):
        out = io.BytesIO()
        picture.save(out, "PNG")
        url = origin.add(f"/trim/{name}.png", out.getvalue(), "image/png")
        answer = client.get(pixelpipe + signed(f"/t:10:ffffff/plain/{url}@png"))
        assert answer.status_code == 200, answer.text
        image = decode(answer.content)
        assert (image.width, image.height) == size
        assert tuple(image(0, image.height // 2))[:3] == (220, 20, 20)


def test_a_product_on_white_is_trimmed_to_itself(
    origin: Origin, client: httpx.Client, pixelpipe: str
) -> None:
    """A 3000x2000 JPEG: a photograph on white with margins of different
    widths. t:10 answers the photograph (its size, its pixels), and a picture
    without margins comes back whole."""
    photo = photo_like(1400, 900, seed=7)
    canvas = pyvips.Image.black(3000, 2000, bands=3).new_from_image([255, 255, 255]).cast("uchar")
    product = canvas.insert(photo, 700, 300).copy(interpretation="srgb")
    url = origin.add("/trim/product.jpg", encode(product, "jpg", Q=95), "image/jpeg")
    answer = client.get(pixelpipe + signed(f"/t:10/plain/{url}@png"))
    assert answer.status_code == 200, answer.text
    trimmed = decode(answer.content)
    assert abs(trimmed.width - 1400) <= 2 and abs(trimmed.height - 900) <= 2
    own = photo.crop(0, 0, min(1400, trimmed.width), min(900, trimmed.height))
    assert mean_abs_difference(trimmed.crop(0, 0, own.width, own.height)[:3], own) < 3
    bleed = origin.add("/trim/bleed.jpg", encode(photo, "jpg", Q=95), "image/jpeg")
    whole = decode(client.get(pixelpipe + signed(f"/t:10/plain/{bleed}@png")).content)
    assert (whole.width, whole.height) == (1400, 900)


def test_trimming_jobs_stay_under_their_footprint(tmp_path: Path) -> None:
    """A trimming job decodes the whole picture whatever the result's size
    and searches it: on a 10 MP JPEG its peak stays under the estimate
    admission reserves (imgproxy's t: and thumbor's trim)."""
    assert_under_estimates(
        tmp_path,
        ["t:10/rs:fit:300:300", "t:10/rs:fit:1200:1200", "trim/300x300/filters:quality(80)"],
    )
