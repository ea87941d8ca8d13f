"""pixelpipe: an on-the-fly image proxy that speaks imgproxy's URL language."""

__version__ = "0.1.0"
