"""cqia: small composable Unix commands for curating Chinese instruction-tuning data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cqia")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
