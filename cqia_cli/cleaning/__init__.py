"""The steps of `cqia clean`, usable without the command line.

    from cqia_cli.cleaning import StepSet, Cleaner
    cleaner = Cleaner(StepSet().build())      # the default steps
    changes = cleaner.clean(record)           # None, or what changed; the record is rewritten
    text, applied = cleaner.clean_text("output", text)

steps.py holds the steps, config.py recipes and profiles (filter's machinery), engine.py the
loop, the counts and the batch worker of every run.
"""

from cqia_cli.cleaning.config import ConfigError, StepSet, build_steps, load_recipe
from cqia_cli.cleaning.engine import Cleaner, CleanWork, Tally
from cqia_cli.cleaning.steps import STEPS, Step

__all__ = ["Cleaner", "CleanWork", "ConfigError", "STEPS", "Step", "StepSet", "Tally",
           "build_steps", "load_recipe"]
