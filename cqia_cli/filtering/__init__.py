"""The quality rules of `cqia filter`, usable without the command line.

    from cqia_cli.filtering import RuleSet, Filter
    rules = RuleSet().build()                 # the default set
    reasons = Filter(rules).check(record)     # None, or [(rule, field, detail)]

rules.py holds the rules, terms.py the Aho–Corasick term lists, pii.py the contact-data
detectors, expr.py the `--where` language, config.py recipes and profiles, engine.py the loop.
"""

from cqia_cli.filtering.config import ConfigError, RuleSet, build_rules, load_recipe
from cqia_cli.filtering.engine import Filter, Tally, annotation
from cqia_cli.filtering.rules import RULES, Rule

__all__ = ["ConfigError", "Filter", "RULES", "Rule", "RuleSet", "Tally", "annotation",
           "build_rules", "load_recipe"]
