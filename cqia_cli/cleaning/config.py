"""Which steps run, with which parameters: the default set, a TOML recipe, a profile, flags.

The machinery is filter's (`cqia_cli.filtering.config.RuleSet`) over the step registry; a
recipe names `[steps.NAME]` tables where filter's names `[rules.NAME]`:

    description = "Zhihu answers"
    defaults = true                      # start from the default steps (the default)

    [steps.whitespace]
    max_blank_lines = 2

    [steps.punct]
    enabled = false

    [profiles.forum.steps.sub]
    rules = ['output:\\n评分：[0-9.]+$:']

Layers apply in order: defaults, the recipe's tables, the profile's (a profile may `extends`
another), then command-line flags (--steps, --skip, --set, --sub).
"""

from __future__ import annotations

from cqia_cli.cleaning.steps import STEPS, MissingDependency, Step
from cqia_cli.filtering.config import ConfigError, RuleSet, load_recipe

__all__ = ["ConfigError", "StepSet", "build_steps", "load_recipe"]


class StepSet(RuleSet):
    registry = STEPS
    noun = "step"
    table = "steps"

    def build(self, global_fields: tuple = ()) -> list[Step]:
        return build_steps(self.specs(global_fields))


def build_steps(specs: list[tuple[str, tuple, dict]]) -> list[Step]:
    steps = []
    for name, fields, values in specs:
        try:
            steps.append(STEPS[name](fields, **values))
        except MissingDependency:
            raise
        except ValueError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith("step ") else f"step {name}: {msg}") from None
    return steps
