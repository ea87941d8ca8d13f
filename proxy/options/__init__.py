"""Path -> ProcessingOptions: a pure, side-effect-free translation of the URL."""

from proxy.options.model import Crop, Gravity, GravityType, ProcessingOptions, ResizingType
from proxy.options.parse import ParserConfig, parse_options
from proxy.options.url import SplitPath, split_path

__all__ = [
    "Crop",
    "Gravity",
    "GravityType",
    "ParserConfig",
    "ProcessingOptions",
    "ResizingType",
    "SplitPath",
    "parse_options",
    "split_path",
]
