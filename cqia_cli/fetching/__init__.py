"""The domain of `cqia fetch`: sources (hub, URLs, files, catalog), the download cache and
transport. The record containers are read by cqia_cli/containers.py, shared with convert.
Plain functions and classes, testable without click."""
