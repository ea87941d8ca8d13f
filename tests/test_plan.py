from __future__ import annotations

import pytest

from proxy.options import Gravity, GravityType, ProcessingOptions, ResizingType
from proxy.pipeline.plan import calc_position, plan_geometry


def opts(**kw: object) -> ProcessingOptions:
    return ProcessingOptions(source_url="http://a/b", **kw)  # type: ignore[arg-type]


def result_size(src: tuple[int, int], **kw: object) -> tuple[int, int]:
    """The size the pipeline ends with: scaled, cut by the result crop, extended."""
    o = opts(**kw)
    p = plan_geometry(src[0], src[1], o)
    w = min(p.scaled_width, p.result_crop_width or p.scaled_width)
    h = min(p.scaled_height, p.result_crop_height or p.scaled_height)
    if o.extend:
        w, h = max(w, p.target_width), max(h, p.target_height)
    return w, h


FIT, FILL, FILL_DOWN, FORCE, AUTO = (
    ResizingType.FIT,
    ResizingType.FILL,
    ResizingType.FILL_DOWN,
    ResizingType.FORCE,
    ResizingType.AUTO,
)


@pytest.mark.parametrize(
    ("src", "kw", "expected"),
    [
        ((2000, 1000), {"width": 500, "height": 500}, (500, 250)),
        ((2000, 1000), {"width": 500}, (500, 250)),
        ((2000, 1000), {"height": 100}, (200, 100)),
        ((2000, 1000), {"resizing_type": FILL, "width": 500, "height": 500}, (500, 500)),
        ((2000, 1000), {"resizing_type": FORCE, "width": 300, "height": 700}, (300, 700)),
        ((2000, 1000), {"resizing_type": FORCE, "width": 300}, (300, 1000)),
        # auto: same orientation -> fill, different -> fit
        ((2000, 1000), {"resizing_type": AUTO, "width": 400, "height": 300}, (400, 300)),
        ((2000, 1000), {"resizing_type": AUTO, "width": 300, "height": 400}, (300, 150)),
        # no enlarging by default
        ((200, 100), {"width": 400, "height": 400}, (200, 100)),
        ((200, 100), {"width": 400, "height": 400, "enlarge": True}, (400, 200)),
        ((200, 100), {"resizing_type": FILL, "width": 400, "height": 400}, (200, 100)),
        # fill-down keeps the requested aspect ratio when it cannot fill
        ((200, 100), {"resizing_type": FILL_DOWN, "width": 400, "height": 400}, (100, 100)),
        ((2000, 1000), {"resizing_type": FILL_DOWN, "width": 400, "height": 400}, (400, 400)),
        # extend pads to the requested size
        ((200, 100), {"width": 400, "height": 400, "extend": True}, (400, 400)),
        # min-width / min-height
        # min-width/min-height scale up what a size would make too small; a size
        # that is also set then cuts the result (imgproxy's documented caveat)
        ((2000, 1000), {"width": 100, "min_height": 200}, (100, 200)),
        ((2000, 1000), {"height": 50, "min_width": 300}, (300, 50)),
        ((2000, 1000), {"width": 100, "height": 100, "min_width": 300}, (100, 100)),
        # zoom and dpr multiply
        ((2000, 1000), {"width": 100, "zoom_x": 2.0, "zoom_y": 2.0}, (200, 100)),
        ((2000, 1000), {"width": 100, "dpr": 3.0}, (300, 150)),
        (
            (2000, 1000),
            {"width": 100, "height": 100, "resizing_type": FILL, "dpr": 2.0},
            (200, 200),
        ),
        # dpr never enlarges without enlarge
        ((300, 150), {"width": 200, "dpr": 3.0}, (300, 150)),
        # nothing asked: the source size
        ((640, 480), {}, (640, 480)),
    ],
)
def test_result_sizes(
    src: tuple[int, int], kw: dict[str, object], expected: tuple[int, int]
) -> None:
    assert result_size(src, **kw) == expected


def test_crop_is_counted_before_resizing() -> None:
    from proxy.options import Crop

    p = plan_geometry(1000, 800, opts(crop=Crop(500, 0.5), width=250))
    assert (p.crop_width, p.crop_height) == (500, 400)
    assert (p.scaled_width, p.scaled_height) == (250, 200)


def test_shrink_tells_how_much_smaller_the_result_is() -> None:
    assert plan_geometry(4000, 2000, opts(width=500)).shrink == pytest.approx(8.0)
    assert plan_geometry(400, 200, opts(width=500)).shrink == pytest.approx(1.0)


def test_every_size_is_at_least_one_pixel() -> None:
    p = plan_geometry(10000, 10, opts(width=1, height=1, resizing_type=FIT))
    assert p.scaled_width >= 1 and p.scaled_height >= 1


@pytest.mark.parametrize(
    ("gravity", "expected"),
    [
        # centre: imgproxy rounds (outer - inner + 1) / 2 half-to-even
        (Gravity(GravityType.CENTER), (50, 26)),
        (Gravity(GravityType.NORTH), (50, 0)),
        (Gravity(GravityType.SOUTH), (50, 50)),
        (Gravity(GravityType.EAST), (100, 26)),
        (Gravity(GravityType.WEST), (0, 26)),
        (Gravity(GravityType.NORTH_EAST), (100, 0)),
        (Gravity(GravityType.NORTH_WEST), (0, 0)),
        (Gravity(GravityType.SOUTH_EAST), (100, 50)),
        (Gravity(GravityType.SOUTH_WEST), (0, 50)),
        (Gravity(GravityType.NORTH_WEST, 10, 5), (10, 5)),
        (Gravity(GravityType.SOUTH_EAST, 10, 5), (90, 45)),
        (Gravity(GravityType.CENTER, 0.1, 0), (70, 26)),
        (Gravity(GravityType.NORTH_WEST, 500, 500), (100, 50)),  # kept inside
        (Gravity(GravityType.FOCUS_POINT, 0.0, 0.0), (0, 0)),
        (Gravity(GravityType.FOCUS_POINT, 1.0, 1.0), (100, 50)),
        (Gravity(GravityType.FOCUS_POINT, 0.5, 0.5), (50, 25)),
    ],
)
def test_calc_position(gravity: Gravity, expected: tuple[int, int]) -> None:
    assert calc_position(200, 100, 100, 50, gravity) == expected


def test_absolute_offsets_follow_dpr() -> None:
    assert calc_position(400, 200, 100, 50, Gravity(GravityType.NORTH_WEST, 10, 5), 2.0) == (20, 10)


def test_a_fill_is_limited_by_its_cut_not_by_the_canvas_it_is_cut_from() -> None:
    """A 12000x400 panorama filling 600x600 is scaled to 18000x600 first: that
    canvas counts for memory (result_size), the 600x600 for the side limit."""
    p = plan_geometry(12000, 400, opts(width=600, height=600, resizing_type=FILL, enlarge=True))
    assert p.result_size == (18000, 600)
    assert p.output_size == (600, 600)
    padded = plan_geometry(400, 400, opts(width=100, height=100, padding=(1, 2, 3, 4)))
    assert padded.output_size == (106, 104)
