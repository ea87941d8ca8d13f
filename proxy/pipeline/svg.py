"""SVG sanitising: what an SVG may not carry when we hand it to a browser.

An SVG served from our origin runs with our origin's rights if it carries
script, so pass-through SVG loses every script, event handler, embedded
foreign content and reference to anything outside the document.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from proxy.errors import NotAnImage, UnsupportedFormat

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ElementTree.register_namespace("", SVG_NS)
ElementTree.register_namespace("xlink", XLINK_NS)

_FORBIDDEN_ELEMENTS = {
    "script",
    "foreignobject",
    "iframe",
    "embed",
    "object",
    "handler",
    "listener",
}
_LINK_ATTRIBUTES = {"href", "src", "action", "formaction"}
_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)[^)]*\)", re.IGNORECASE)
_IMPORT = re.compile(r"@import[^;]*;?", re.IGNORECASE)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()


def _is_local_reference(value: str) -> bool:
    text = value.strip().lower()
    return text.startswith("#") or (text.startswith("data:image/") and "svg" not in text[:20])


def sanitize_svg(data: bytes) -> bytes:
    # Entity declarations buy nothing in an image and are how XML bombs and
    # external-entity reads start: refuse them outright.
    if re.search(rb"<!ENTITY", data, re.IGNORECASE):
        raise UnsupportedFormat("SVG with entity declarations is not supported")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise NotAnImage("source SVG is not well-formed") from None
    if _local(root.tag) != "svg":
        raise NotAnImage("source is not an SVG image")
    _clean(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _clean(element: ElementTree.Element) -> None:
    for child in list(element):
        if not isinstance(child.tag, str) or _local(child.tag) in _FORBIDDEN_ELEMENTS:
            element.remove(child)  # comments/processing instructions too
            continue
        _clean(child)
    for name, value in list(element.attrib.items()):
        local = _local(name)
        if (
            local.startswith("on")
            or (local in _LINK_ATTRIBUTES and not _is_local_reference(value))
            or "javascript:" in value.lower()
        ):
            del element.attrib[name]
        elif local == "style":
            element.attrib[name] = _clean_css(value)
    if _local(element.tag) == "style" and element.text:
        element.text = _clean_css(element.text)


def _clean_css(css: str) -> str:
    return _EXTERNAL_URL.sub("none", _IMPORT.sub("", css))
