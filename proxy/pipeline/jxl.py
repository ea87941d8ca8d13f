"""libjxl's decoder API through ctypes, for what no JPEG XL binding returns.

pylibjxl decodes a still quickly, but an animation only as one frame, and a
lossy (XYB) file's pixels in its own colour space without the profile that
says which (a Display P3 photo came out as if it were sRGB). libjxl itself
knows both: the frames with their durations, and an ICC profile for the
decoded pixels. Its C API is exported by the library pylibjxl's wheel ships,
so it is called here directly; no second copy of libjxl is installed. (No
package on PyPI returns frame durations: pillow-jxl-plugin reads one frame,
imagecodecs and jxlpy return frames without their times.)

The calls follow libjxl 0.11's decode.h; the structures are read only as far
as the fields used, at their documented offsets.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from functools import cache

import numpy as np

# JxlDecoderStatus values and the events to subscribe to (decode.h).
_SUCCESS = 0
_ERROR = 1
_NEED_MORE_INPUT = 2
_NEED_IMAGE_OUT_BUFFER = 5
_BASIC_INFO = 0x40
_COLOR_ENCODING = 0x100
_FRAME = 0x400
_FULL_IMAGE = 0x1000
_TARGET_DATA = 1  # JXL_COLOR_PROFILE_TARGET_DATA: the profile of the pixels handed out
_UINT8 = 2  # JXL_TYPE_UINT8

# JxlBasicInfo is 204 bytes in 0.11; room is left for growth.
_BASIC_INFO_SIZE = 512
_FRAME_HEADER_SIZE = 256


class JxlError(Exception):
    """The file is not JPEG XL libjxl can read (corrupt, truncated, hostile)."""


class _ColorEncoding(ctypes.Structure):
    """JxlColorEncoding: a colour space libjxl can name without a profile."""

    _fields_ = [
        ("color_space", ctypes.c_int),
        ("white_point", ctypes.c_int),
        ("white_point_xy", ctypes.c_double * 2),
        ("primaries", ctypes.c_int),
        ("primaries_red_xy", ctypes.c_double * 2),
        ("primaries_green_xy", ctypes.c_double * 2),
        ("primaries_blue_xy", ctypes.c_double * 2),
        ("transfer_function", ctypes.c_int),
        ("gamma", ctypes.c_double),
        ("rendering_intent", ctypes.c_int),
    ]

    @property
    def is_srgb(self) -> bool:
        # JXL_COLOR_SPACE_RGB, JXL_WHITE_POINT_D65, JXL_PRIMARIES_SRGB,
        # JXL_TRANSFER_FUNCTION_SRGB
        return (
            self.color_space == 0
            and self.white_point == 1
            and self.primaries == 1
            and self.transfer_function == 13
        )


class _PixelFormat(ctypes.Structure):
    _fields_ = [
        ("num_channels", ctypes.c_uint32),
        ("data_type", ctypes.c_int),
        ("endianness", ctypes.c_int),
        ("align", ctypes.c_size_t),
    ]


@cache
def _library() -> ctypes.CDLL:
    import pylibjxl._pylibjxl as extension

    lib = ctypes.CDLL(extension.__file__)
    lib.JxlDecoderCreate.restype = ctypes.c_void_p
    lib.JxlDecoderCreate.argtypes = [ctypes.c_void_p]
    lib.JxlDecoderDestroy.argtypes = [ctypes.c_void_p]
    lib.JxlDecoderDestroy.restype = None
    lib.JxlDecoderCloseInput.argtypes = [ctypes.c_void_p]
    lib.JxlDecoderCloseInput.restype = None
    for name, args in {
        "JxlDecoderSubscribeEvents": [ctypes.c_void_p, ctypes.c_int],
        "JxlDecoderSetInput": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t],
        "JxlDecoderProcessInput": [ctypes.c_void_p],
        "JxlDecoderGetBasicInfo": [ctypes.c_void_p, ctypes.c_void_p],
        "JxlDecoderGetFrameHeader": [ctypes.c_void_p, ctypes.c_void_p],
        "JxlDecoderGetICCProfileSize": [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_size_t),
        ],
        "JxlDecoderGetColorAsICCProfile": [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ],
        "JxlDecoderGetColorAsEncodedProfile": [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.POINTER(_ColorEncoding),
        ],
        "JxlDecoderImageOutBufferSize": [
            ctypes.c_void_p,
            ctypes.POINTER(_PixelFormat),
            ctypes.POINTER(ctypes.c_size_t),
        ],
        "JxlDecoderSetImageOutBuffer": [
            ctypes.c_void_p,
            ctypes.POINTER(_PixelFormat),
            ctypes.c_void_p,
            ctypes.c_size_t,
        ],
    }.items():
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = ctypes.c_int
    return lib


@dataclass(frozen=True, slots=True)
class JxlInfo:
    width: int  # as displayed: libjxl applies the orientation
    height: int
    has_alpha: bool
    animated: bool
    frames: int  # counted up to the caller's limit, then one more
    loops: int  # 0: forever
    icc: bytes  # the profile of the decoded pixels


@dataclass(frozen=True, slots=True)
class JxlFrames:
    pixels: list[np.ndarray]  # height x width x channels, uint8, one per frame
    delays: list[int]  # milliseconds
    loops: int
    icc: bytes


def read_info(data: bytes, max_pixels: int = 0) -> JxlInfo:
    """Header, colour profile and (for animations) the frame count, without
    decoding a pixel: frames not subscribed to are skipped by libjxl.
    Counting stops once the frames hold more than `max_pixels` (0: no limit),
    so a file of a million tiny frames is not walked to its end to be refused."""
    walk = _Walk(data, _BASIC_INFO | _COLOR_ENCODING | _FRAME)
    try:
        frames = 0
        for event in walk:
            if event == _FRAME:
                frames += 1
                if not walk.animated or (
                    max_pixels and walk.width * walk.height * frames > max_pixels
                ):
                    break
        return JxlInfo(
            walk.width,
            walk.height,
            walk.has_alpha,
            walk.animated,
            max(frames, 1),
            walk.loops,
            walk.icc,
        )
    finally:
        walk.close()


def decode_frames(data: bytes, limit: int | None = None) -> JxlFrames:
    """Every displayed frame (blended onto the canvas, as a browser shows it),
    or the first `limit`, with its duration in milliseconds, and the profile
    of the pixels."""
    walk = _Walk(data, _BASIC_INFO | _COLOR_ENCODING | _FRAME | _FULL_IMAGE)
    try:
        pixels: list[np.ndarray] = []
        delays: list[int] = []
        for event in walk:
            if event == _FRAME:
                delays.append(walk.frame_duration_ms())
            elif event == _FULL_IMAGE:
                pixels.append(walk.take_frame())
                if limit is not None and len(pixels) >= limit:
                    break
        if not pixels:
            raise JxlError("no frame")
        return JxlFrames(pixels, delays[: len(pixels)], walk.loops, walk.icc)
    finally:
        walk.close()


class _Walk:
    """One pass of libjxl's event loop over an in-memory file."""

    def __init__(self, data: bytes, events: int) -> None:
        self._lib = _library()
        self._data = data  # kept alive: libjxl reads from it in place
        self._decoder = self._lib.JxlDecoderCreate(None)
        if not self._decoder:
            raise MemoryError("libjxl decoder")
        self._format = _PixelFormat(4, _UINT8, 0, 0)
        self._buffer: np.ndarray | None = None
        self.width = self.height = self.loops = 0
        self.has_alpha = self.animated = False
        self._ticks_per_second = 1000.0
        self.icc = b""
        self._check(self._lib.JxlDecoderSubscribeEvents(self._decoder, events))
        self._check(self._lib.JxlDecoderSetInput(self._decoder, data, len(data)))
        self._lib.JxlDecoderCloseInput(self._decoder)

    def close(self) -> None:
        if self._decoder:
            self._lib.JxlDecoderDestroy(self._decoder)
            self._decoder = None

    def _check(self, status: int) -> None:
        if status != _SUCCESS:
            raise JxlError("libjxl refused the file")

    def __iter__(self):  # type: ignore[no-untyped-def]
        while True:
            status = self._lib.JxlDecoderProcessInput(self._decoder)
            if status == _SUCCESS:
                return
            if status == _ERROR:
                raise JxlError("corrupt")
            if status == _NEED_MORE_INPUT:
                raise JxlError("truncated")
            if status == _BASIC_INFO:
                self._read_basic_info()
            elif status == _COLOR_ENCODING:
                self._read_icc()
            elif status == _NEED_IMAGE_OUT_BUFFER:
                self._give_buffer()
            yield status

    def _read_basic_info(self) -> None:
        info = ctypes.create_string_buffer(_BASIC_INFO_SIZE)
        self._check(self._lib.JxlDecoderGetBasicInfo(self._decoder, info))
        raw = info.raw
        (xsize, ysize) = struct.unpack_from("<II", raw, 4)
        (have_animation, orientation) = struct.unpack_from("<iI", raw, 44)
        (alpha_bits,) = struct.unpack_from("<I", raw, 60)
        (numerator, denominator, loops) = struct.unpack_from("<III", raw, 80)
        # Orientations 5-8 turn the picture a quarter: the displayed size swaps.
        swapped = orientation >= 5
        self.width, self.height = (ysize, xsize) if swapped else (xsize, ysize)
        self.has_alpha = alpha_bits > 0
        self.animated = bool(have_animation)
        self.loops = loops
        if numerator and denominator:
            self._ticks_per_second = numerator / denominator
        self._format = _PixelFormat(4 if self.has_alpha else 3, _UINT8, 0, 0)

    def _read_icc(self) -> None:
        encoding = _ColorEncoding()
        named = not self._lib.JxlDecoderGetColorAsEncodedProfile(
            self._decoder, _TARGET_DATA, ctypes.byref(encoding)
        )
        if named and encoding.is_srgb:
            # Plain sRGB: no profile, so the pipeline does not transform
            # sRGB to sRGB over the whole image (50 ms at 12 MP).
            return
        size = ctypes.c_size_t(0)
        if self._lib.JxlDecoderGetICCProfileSize(self._decoder, _TARGET_DATA, ctypes.byref(size)):
            return  # no profile can describe the pixels: libjxl then hands out sRGB
        profile = ctypes.create_string_buffer(size.value)
        if not self._lib.JxlDecoderGetColorAsICCProfile(
            self._decoder, _TARGET_DATA, profile, size.value
        ):
            self.icc = profile.raw

    def _give_buffer(self) -> None:
        size = ctypes.c_size_t(0)
        self._check(
            self._lib.JxlDecoderImageOutBufferSize(
                self._decoder, ctypes.byref(self._format), ctypes.byref(size)
            )
        )
        channels = self._format.num_channels
        if size.value != self.width * self.height * channels:
            raise JxlError("unexpected frame size")
        self._buffer = np.empty((self.height, self.width, channels), np.uint8)
        self._check(
            self._lib.JxlDecoderSetImageOutBuffer(
                self._decoder,
                ctypes.byref(self._format),
                self._buffer.ctypes.data,
                size.value,
            )
        )

    def frame_duration_ms(self) -> int:
        header = ctypes.create_string_buffer(_FRAME_HEADER_SIZE)
        self._check(self._lib.JxlDecoderGetFrameHeader(self._decoder, header))
        (ticks,) = struct.unpack_from("<I", header.raw, 0)
        return round(ticks * 1000 / self._ticks_per_second)

    def take_frame(self) -> np.ndarray:
        if self._buffer is None:
            raise JxlError("frame without pixels")
        frame, self._buffer = self._buffer, None
        return frame
