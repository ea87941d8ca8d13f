"""Test images (made with pyvips, Pillow or by hand), and helpers to look at results as images."""

from __future__ import annotations

import io
import struct
import zlib

import pyvips

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
YELLOW = (255, 255, 0)
WHITE = (255, 255, 255)


def solid(width: int, height: int, colour: tuple[int, ...]) -> pyvips.Image:
    image = pyvips.Image.black(width, height, bands=len(colour)) + list(colour)
    interpretation = "srgb" if len(colour) >= 3 else "b-w"
    return image.cast("uchar").copy(interpretation=interpretation)


def quadrants(width: int = 400, height: int = 300) -> pyvips.Image:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    half_w, half_h = width // 2, height // 2
    top = solid(half_w, half_h, RED).join(solid(width - half_w, half_h, GREEN), "horizontal")
    bottom = solid(half_w, height - half_h, BLUE).join(
        solid(width - half_w, height - half_h, YELLOW), "horizontal"
    )
    return top.join(bottom, "vertical")


def gradient(width: int = 640, height: int = 480) -> pyvips.Image:
    """A smooth RGB gradient: detail for comparisons that a flat image lacks."""
    xyz = pyvips.Image.xyz(width, height)
    red = xyz[0] * (255.0 / width)
    green = xyz[1] * (255.0 / height)
    blue = (xyz[0] + xyz[1]) * (255.0 / (width + height))
    return red.bandjoin([green, blue]).cast("uchar").copy(interpretation="srgb")


def with_alpha(image: pyvips.Image, alpha: int) -> pyvips.Image:
    return image.bandjoin_const([alpha]).copy(interpretation="srgb")


def with_patchy_alpha(image: pyvips.Image) -> pyvips.Image:
    """`image` with an alpha band that varies with it: opaque where its green is
    over 100, else 60 of 255 (premultiplying then changes every colour)."""
    return image.bandjoin((image[1] > 100).ifthenelse(255, 60).cast("uchar"))


def with_orientation(image: pyvips.Image, orientation: int) -> pyvips.Image:
    tagged = image.copy()
    tagged.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return tagged


def encode(image: pyvips.Image, fmt: str, **options: object) -> bytes:
    return image.write_to_buffer(f".{fmt}", **options)


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def loader_format(image: pyvips.Image) -> str:
    loader = image.get("vips-loader")
    if loader == "heifload_buffer":
        return "avif" if image.get("heif-compression") == "av1" else "heic"
    return loader.removesuffix("load_buffer").replace("jpeg", "jpeg")


def pixel(image: pyvips.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(round(v) for v in image(x, y))


def close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return len(actual) >= len(expected) and all(
        abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False)
    )


def mean_abs_difference(a: pyvips.Image, b: pyvips.Image) -> float:
    """Mean absolute pixel difference of two same-size images (0 = identical)."""
    return float((a.cast("float") - b.cast("float")).abs().avg())


def photo_like(
    width: int = 480, height: int = 320, seed: int = 1, grain: float = 3
) -> pyvips.Image:
    """Smooth colour fields with grain and an edge: compresses like a photo, not a chart."""
    xyz = pyvips.Image.xyz(width, height)
    red = xyz[0] * (255.0 / width)
    green = xyz[1] * (255.0 / height)
    blue = (xyz[0] + xyz[1]) * (128.0 / (width + height)) + 64
    base = red.bandjoin([green, blue])
    noise = pyvips.Image.gaussnoise(width, height, sigma=grain, mean=0, seed=seed).gaussblur(0.7)
    edge = (xyz[0] > width // 2).ifthenelse(40, 0)
    return (base + noise.bandjoin([noise, noise]) + edge).cast("uchar").copy(interpretation="srgb")


def ssim_reference(a: pyvips.Image, b: pyvips.Image) -> float:
    """SSIM (Wang et al. 2004) on Rec. 601 luma, written independently of proxy/:
    an explicit 11x11 Gaussian mask (sigma 1.5) convolved with `conv`, no blur op."""
    mask = pyvips.Image.gaussmat(1.5, 0.01, separable=False, precision="float")

    def window(image: pyvips.Image) -> pyvips.Image:
        return image.conv(mask, precision="float")

    def luma(image: pyvips.Image) -> pyvips.Image:
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return (image[0] * 0.299 + image[1] * 0.587 + image[2] * 0.114).cast("float")

    x, y = luma(a), luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = window(x), window(y)
    vx = window(x * x) - mx * mx
    vy = window(y * y) - my * my
    cxy = window(x * y) - mx * my
    ssim_map = ((mx * my * 2 + c1) * (cxy * 2 + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.avg())


def with_odd_resolution_unit(jpeg: bytes) -> bytes:
    """The JPEG with an EXIF block whose ResolutionUnit is 0, which libvips warns about.

    Cameras and editors write such files; the warning is harmless and comes
    twice per image (spliced in by hand: libvips would correct it on save).
    """
    import struct

    # IFD0 at offset 8: XResolution, YResolution (rationals after the IFD), ResolutionUnit 0.
    tiff = (
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 3)
        + struct.pack("<HHII", 0x011A, 5, 1, 50)
        + struct.pack("<HHII", 0x011B, 5, 1, 58)
        + struct.pack("<HHIHH", 0x0128, 3, 1, 0, 0)
        + struct.pack("<I", 0)
        + struct.pack("<II", 72, 1) * 2
    )
    exif = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png16(width: int, height: int, rgba: tuple[int, int, int, int], icc: bytes) -> bytes:
    """A 16-bit RGBA PNG of one colour with an embedded ICC profile, written
    by hand (Pillow writes 16 bits for grey only, and libvips is under test)."""
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    row = b"\x00" + struct.pack(">4H", *rgba) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"iCCP", b"profile\x00\x00" + zlib.compress(icc))
        + png_chunk(b"IDAT", zlib.compress(row * height))
        + png_chunk(b"IEND", b"")
    )


def moving_square_gif(frames: int = 8) -> bytes:
    """400x200 frames (by Pillow): a field whose green rises from left to right
    and a red square that moves 32 pixels right each frame."""
    from PIL import Image, ImageDraw

    pictures = []
    for index in range(frames):
        picture = Image.new("RGB", (400, 200))
        draw = ImageDraw.Draw(picture)
        for x in range(400):
            draw.line([(x, 0), (x, 199)], fill=(60, x // 2, 60))
        left = 20 + 32 * index
        draw.rectangle([left, 70, left + 59, 129], fill=(250, 40, 40))
        pictures.append(picture)
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    return out.getvalue()


def trim_corners_png() -> bytes:
    """400x300, by Pillow: white ground, a red block (100-250 x 60-180) and a
    black one in the top-right corner (350-400 x 0-40). thumbor's trim by its
    top-left corner keeps 300x180; by its top-right one, nothing."""
    from PIL import Image

    picture = Image.new("RGB", (400, 300), "white")
    picture.paste((200, 30, 30), (100, 60, 250, 180))
    picture.paste((0, 0, 0), (350, 0, 400, 40))
    written = io.BytesIO()
    picture.save(written, "PNG")
    return written.getvalue()
