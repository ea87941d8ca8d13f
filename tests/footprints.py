"""Jobs' peak memory against the footprint estimate admission reserves for them."""

from __future__ import annotations

from pathlib import Path

from bench.thumbor_filters import measure_memories, nine_patch
from tests.images import encode, photo_like


def assert_under_estimates(tmp_path: Path, jobs: list[str]) -> None:
    """Each job (thumbor path or imgproxy segments) over a 4000x2500 JPEG, one after
    another in one process: its peak RSS rise at most its estimate. A frame()
    in a job draws a nine-patch."""
    source = tmp_path / "big.jpg"
    source.write_bytes(encode(photo_like(4000, 2500, 2), "jpg", Q=90))
    patch = tmp_path / "patch.png"
    patch.write_bytes(encode(nine_patch(), "png"))
    planned = [(job, patch if "frame(" in job else None) for job in jobs]
    for job, found in zip(jobs, measure_memories(source, planned), strict=True):
        assert found["estimate"] > 0 and found["measured"] <= found["estimate"], (job, found)


def assert_animation_under_estimates(
    tmp_path: Path, jobs: list[str], size: tuple[int, int] = (320, 320), within: float = 3.0
) -> None:
    """As assert_under_estimates, over an animated WebP (by Pillow) of 24 frames
    of `size`: every frame is processed, so every frame's work is counted. The
    estimate is also at most `within` times the peak: an animation estimated far
    above what it takes runs alone (admission) when it need not."""
    import io

    from PIL import Image

    width, height = size
    picture = photo_like(width, height, 3)
    still = Image.frombytes("RGB", size, picture.write_to_memory())
    frames = [still.rotate(15 * index) for index in range(24)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=40, quality=90)
    source = tmp_path / "animation.webp"
    source.write_bytes(out.getvalue())
    found = measure_memories(source, [(job, None) for job in jobs])
    for job, memory in zip(jobs, found, strict=True):
        assert 0 < memory["measured"] <= memory["estimate"], (job, memory)
        assert memory["estimate"] <= within * memory["measured"], (job, memory)
