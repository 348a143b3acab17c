"""cqia review without the interface: index, sampling, decisions, report and --apply.

Nothing here imports textual; the interface is `cqia_cli.review.app`, loaded only when a
person reviews (the optional extra `cqia[review]`).
"""
