"""The statistics behind `cqia stats`: a mergeable Accumulator, fixed length bins, jieba-based
word counts and instruction diversity, and the terminal, HTML and comparison renderers."""

from cqia_cli.stats.accumulator import (
    CQIA_CATEGORIES,
    DEFAULT_TEXT_FIELDS,
    SCHEMA,
    Accumulator,
    Config,
)

__all__ = ["Accumulator", "Config", "CQIA_CATEGORIES", "DEFAULT_TEXT_FIELDS", "SCHEMA"]
