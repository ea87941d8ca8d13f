"""Jinja2 integration (the optional `jinja` extra): URLs and markup from templates.

    from signing.jinja import install
    install(environment, UrlBuilder("https://img.example.com", key=KEY, salt=SALT))

Templates then write

    <img src="{{ "https://shop/cup.jpg" | pixelpipe_url(width=300, format="webp") }}">
    {{ pixelpipe_picture("https://shop/cup.jpg", widths=[320, 640], width=640, height=400,
                         alt="A cup") }}

The filter returns a plain URL (autoescaping applies to it as to any string);
the picture and srcset globals return markup that is already escaped.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from signing.builder import UrlBuilder
from signing.html import picture, srcset


def install(environment: Environment, builder: UrlBuilder) -> None:
    def pixelpipe_url(source: str, **options: Any) -> str:
        return builder.url(source, **options)

    def pixelpipe_srcset(source: str, widths: list[int], **options: Any) -> str:
        return srcset(builder, source, widths, **options)

    def pixelpipe_picture(source: str, widths: list[int], **options: Any) -> Markup:
        # picture() escapes every attribute value itself.
        return Markup(picture(builder, source, widths, **options))

    environment.filters["pixelpipe_url"] = pixelpipe_url
    environment.globals["pixelpipe_url"] = pixelpipe_url
    environment.globals["pixelpipe_srcset"] = pixelpipe_srcset
    environment.globals["pixelpipe_picture"] = pixelpipe_picture
