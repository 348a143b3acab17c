"""cqia: small composable Unix commands for curating Chinese instruction-tuning data."""


def __getattr__(name: str):
    # the version is looked up when asked for, not when the package is imported: the `cqia`
    # entry point installs its signal handlers before anything slow is imported
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("cqia")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
