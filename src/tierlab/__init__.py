"""tierlab: value-based customer relationship management research for retail banking."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tierlab")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
