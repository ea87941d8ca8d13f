"""Boxes in a picture that was turned and flipped, found again in the picture
before: the pipeline turns (`rotate`, clockwise) and flips the upright source
before it cuts, where thumbor cuts first and reports its boxes unturned."""

from __future__ import annotations

from dataclasses import dataclass

BoxEdges = tuple[float, float, float, float]  # left, top, right, bottom


@dataclass(frozen=True, slots=True)
class Turn:
    """How the pipeline turned and flipped the upright source (`rotate`
    clockwise, then the flips): boxes in its pixels are turned back."""

    rotate: int
    flip_horizontal: bool
    flip_vertical: bool

    @property
    def quarter(self) -> bool:
        return self.rotate in (90, 270)

    def box(self, edges: BoxEdges, size: tuple[int, int]) -> BoxEdges:
        """`edges` of a box in a turned picture of `size`, in the upright one."""
        left, top, right, bottom = edges
        width, height = size
        if self.flip_vertical:
            top, bottom = height - bottom, height - top
        if self.flip_horizontal:
            left, right = width - right, width - left
        if self.rotate == 90:  # upright (x, y) went to (its height - y, x)
            return top, width - right, bottom, width - left
        if self.rotate == 180:
            return width - right, height - bottom, width - left, height - top
        if self.rotate == 270:  # upright (x, y) went to (y, its width - x)
            return height - bottom, left, height - top, right
        return left, top, right, bottom

    def size(self, size: tuple[int, int]) -> tuple[int, int]:
        return (size[1], size[0]) if self.quarter else size
