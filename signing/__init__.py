"""Sign and verify pixelpipe (imgproxy-compatible) URLs.

Importable by client applications without the server's dependencies: this
package needs only itsdangerous.
"""

from signing.signer import KeyRing, Signer, sign_path

__all__ = ["KeyRing", "Signer", "sign_path"]
