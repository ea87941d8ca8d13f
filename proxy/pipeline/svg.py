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
# SMIL animations can set any attribute at run time: one that targets an event
# handler, a link or a style would put back what sanitising took out.
_ANIMATIONS = {"set", "animate", "animatetransform", "animatemotion", "animatecolor"}
_LINK_ATTRIBUTES = {"href", "src", "action", "formaction", "base"}
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:text/html", "data:application")
# After escapes and comments are gone: constructs that load something.
_CSS_LOAD = re.compile(
    r"@import|url\(|image-set\(|image\(|cross-fade\(|element\(|expression\(|-moz-binding"
    r"|behavior\s*:",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]*)\1\s*\)", re.IGNORECASE)
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\r\n\f]?|\r\n|(.))", re.DOTALL)
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_AT_IMPORT = re.compile(r"@import[^;{}]*(?:;|$)", re.IGNORECASE)
_SPACE_AND_CONTROLS = re.compile(r"[\x00-\x20\x7f]+")


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()


def _namespace(name: str) -> str | None:
    return name[1:].split("}", 1)[0] if name.startswith("{") else None


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


def _forbidden(element: ElementTree.Element) -> bool:
    if not isinstance(element.tag, str):
        return True  # comments, processing instructions
    local = _local(element.tag)
    if _namespace(element.tag) not in (None, SVG_NS) or local in _FORBIDDEN_ELEMENTS:
        return True  # other vocabularies (XHTML among them) are not drawn, only run
    if local in _ANIMATIONS:
        target = _local(element.attrib.get("attributeName", "").rsplit(":", 1)[-1])
        return target.startswith("on") or target in _LINK_ATTRIBUTES or target == "style"
    return False


def _clean(element: ElementTree.Element) -> None:
    for child in list(element):
        if _forbidden(child):
            element.remove(child)
            continue
        _clean(child)
    for name, value in list(element.attrib.items()):
        local = _local(name)
        if local == "style":
            element.attrib[name] = clean_css(value)
        elif _unsafe_attribute(local, value):
            del element.attrib[name]
    if _local(element.tag) == "style" and element.text:
        element.text = clean_css(element.text)


def _unsafe_attribute(local: str, value: str) -> bool:
    compact = _SPACE_AND_CONTROLS.sub("", value).lower()  # browsers skip these in URLs
    if local.startswith("on") or compact.startswith(_SCRIPT_SCHEMES):
        return True
    if local in _LINK_ATTRIBUTES:
        return not _is_local_reference(value)
    # Presentation attributes (fill, filter, mask, cursor...) are CSS values:
    # read them as CSS, escapes included, and keep only local references.
    return clean_css(value) != _decode_css(value)


def _decode_css(css: str) -> str:
    """CSS as a browser reads it: comments gone, escapes decoded, and no backslash
    left, so nothing in the output can be read as an escape a second time."""

    def decoded(match: re.Match[str]) -> str:
        if match.group(1):
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        char = match.group(2) or ""
        return "" if char in "\r\n\f" else char  # an escaped newline continues a string

    return _CSS_ESCAPE.sub(decoded, _CSS_COMMENT.sub("", css)).replace("\\", "").replace("\x00", "")


def clean_css(css: str) -> str:
    """A style sheet or declaration that loads nothing: every way of naming an outside
    resource (`@import`, `url()` but to `#id` or a raster data: URL, image-set and
    friends) is read after decoding, as the browser would, and neutered."""
    text = _AT_IMPORT.sub("", _decode_css(css))

    def url(match: re.Match[str]) -> str:
        # A kept reference is marked (NUL cannot survive decoding) so the pass
        # below leaves it alone.
        return "\x00" + match.group(0) if _is_local_reference(match.group(2)) else "none"

    text = _CSS_URL.sub(url, text)
    # What is left that could load (an unclosed url(, image-set("...")) stops working.
    text = re.sub(
        r"(?<!\x00)(?:" + _CSS_LOAD.pattern + ")",
        lambda m: "x-" + m.group(0).replace("(", "-(").lstrip("@"),
        text,
        flags=re.IGNORECASE,
    )
    return text.replace("\x00", "")
