"""Boxes in the upright picture and in the picture `orient` turned (`rotate`,
clockwise) and flipped from it, both ways: the pipeline turns and flips the
source before it cuts, where thumbor cuts first (its trim corner, its boxes
in meta/) and the face detector looks at the picture unturned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.options.model import ProcessingOptions

BoxEdges = tuple[float, float, float, float]  # left, top, right, bottom


@dataclass(frozen=True, slots=True)
class Turn:
    """How the pipeline turned and flipped the upright source (`rotate`
    clockwise, then the flips): boxes in its pixels are turned back."""

    rotate: int
    flip_horizontal: bool
    flip_vertical: bool

    @classmethod
    def of(cls, options: ProcessingOptions) -> Turn:
        return cls(options.rotate, options.flip_horizontal, options.flip_vertical)

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

    def forward(self, edges: BoxEdges, size: tuple[int, int] = (1, 1)) -> BoxEdges:
        """`edges` of a box in the upright picture of `size`, in the turned one
        (the default size: fractions)."""
        left, top, right, bottom = edges
        width, height = size
        if self.rotate == 90:  # (x, y) goes to (height - y, x)
            left, top, right, bottom = height - bottom, left, height - top, right
        elif self.rotate == 180:
            left, top, right, bottom = width - right, height - bottom, width - left, height - top
        elif self.rotate == 270:  # (x, y) goes to (y, width - x)
            left, top, right, bottom = top, width - right, bottom, width - left
        width, height = self.size(size)
        if self.flip_horizontal:
            left, right = width - right, width - left
        if self.flip_vertical:
            top, bottom = height - bottom, height - top
        return left, top, right, bottom

    def size(self, size: tuple[int, int]) -> tuple[int, int]:
        return (size[1], size[0]) if self.quarter else size
