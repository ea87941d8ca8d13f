"""Sign and build pixelpipe (imgproxy-compatible) URLs, and responsive image markup.

Importable by client applications without the server's dependencies: this
package needs only itsdangerous (and Jinja2 for `signing.jinja`, an optional
extra).
"""

from signing.builder import UrlBuilder
from signing.html import picture, srcset, srcset_density
from signing.signer import KeyRing, Signer, sign_path

__all__ = [
    "KeyRing",
    "Signer",
    "UrlBuilder",
    "picture",
    "sign_path",
    "srcset",
    "srcset_density",
]
