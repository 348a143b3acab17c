"""Split records into named parts (train/valid/test) or numbered shards, deterministically.

Pure functions and small classes over records, used by `cqia split` and testable without it:

- plan: the parts and their exact targets (largest-remainder and controlled rounding);
- keys: the hash key, group and stratum of a record; the --stream assigner;
- exact: the exact-mode assigner (compact per-record keys, then the part of each record);
- outputs: file names from the -o pattern and the writer that cuts --shard-size shards.
"""

from cqia_cli.splitting.exact import ExactAssigner
from cqia_cli.splitting.keys import (
    NO_STRATUM,
    Field,
    StreamAssigner,
    group_key,
    key_text,
    stratum_key,
)
from cqia_cli.splitting.outputs import MarkWriter, PartWriter, check_pattern
from cqia_cli.splitting.plan import (
    Plan,
    PlanError,
    largest_remainder,
    make_plan,
    stratified_targets,
)

__all__ = [
    "ExactAssigner", "Field", "MarkWriter", "NO_STRATUM", "PartWriter", "Plan", "PlanError",
    "StreamAssigner", "check_pattern", "group_key", "key_text", "largest_remainder", "make_plan",
    "stratified_targets", "stratum_key",
]
