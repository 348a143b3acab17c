"""The domain of `cqia fetch`: sources (hub, URLs, files, catalog), the download cache and
transport, and the record containers. Plain functions and classes, testable without click."""
