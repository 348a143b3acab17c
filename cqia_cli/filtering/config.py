"""Which rules run, with which parameters: the default set, a TOML recipe, a profile, flags.

Layers apply in this order, each over the one before:

1. the default rule set (every rule whose `default_on` is true, with its defaults), unless the
   recipe or profile says `defaults = false` (or --no-defaults);
2. the recipe's top-level `[rules.NAME]` tables;
3. the selected profile's `[profiles.PROFILE.rules.NAME]` tables (a profile may `extends` another);
4. command-line flags (--set, --min-len, --disable, --where, ...).

A recipe:

    description = "Zhihu answers: human-written, high score"
    defaults = true                      # start from the default set (the default)

    [rules.length]
    min = { output = 20 }                # merged with the defaults per field
    max = { output = 4096 }

    [rules.ads]
    enabled = false

    [profiles.strict.rules.threshold]
    conditions = ["score >= 8"]

An unknown rule, parameter or profile is an error that names it.
"""

from __future__ import annotations

import copy
from typing import Any

from cqia_cli.filtering.rules import RULES, Rule
from cqia_cli.filtering.terms import TermFileError

TOP_KEYS = ("description", "defaults", "rules", "profiles")
PROFILE_KEYS = ("description", "defaults", "rules", "extends")


class ConfigError(ValueError):
    """A recipe or option that names an unknown rule, parameter or profile, or a bad value."""


def known_rules() -> str:
    return ", ".join(RULES)


def rule_class(name: str, where: str = "") -> type[Rule]:
    try:
        return RULES[name]
    except KeyError:
        raise ConfigError(f"{where}unknown rule {name!r} (known: {known_rules()})") from None


class RuleSet:
    """The layered settings of every rule; `build()` makes the rule objects.

    The machinery serves any registry of named classes with `default_on`, `params` and
    `param(name)`: `cqia clean` subclasses it for its steps (registry, noun and table)."""

    #: name -> class; what a recipe table of this kind names (`[rules.NAME]`)
    registry: dict = RULES
    noun = "rule"
    table = "rules"

    def __init__(self, defaults: bool = True):
        self.enabled: dict[str, bool] = {}
        self.values: dict[str, dict[str, Any]] = {name: {} for name in self.registry}
        self.fields: dict[str, tuple] = {}
        self.use_defaults(defaults)

    def use_defaults(self, on: bool) -> None:
        self.enabled = {name: bool(on and cls.default_on) for name, cls in self.registry.items()}

    def cls(self, name: str, where: str = ""):
        try:
            return self.registry[name]
        except KeyError:
            raise ConfigError(f"{where}unknown {self.noun} {name!r} "
                              f"(known: {', '.join(self.registry)})") from None

    # -- changes -----------------------------------------------------------------------------

    def enable(self, name: str, on: bool = True, where: str = "") -> None:
        self.cls(name, where)
        self.enabled[name] = on

    def set(self, rule: str, param: str, value: Any, *, field: str | None = None,
            append: bool = False, where: str = "") -> None:
        """Set one parameter; per-field values merge with what is there, lists may append."""
        cls = self.cls(rule, where)
        try:
            p = cls.param(param)
        except KeyError as e:
            raise ConfigError(f"{where}{e.args[0]}") from None
        try:
            value = p.coerce(value, field=field)
        except ValueError as e:
            raise ConfigError(f"{where}{rule}.{param}: {e}") from None
        if param == "fields":
            self.fields[rule] = tuple(value)
            return
        current = self.values[rule]
        if p.kind.startswith("per-field") and set(value) != {"*"}:
            merged = dict(current.get(param, p.default))
            merged.update(value)
            current[param] = merged
        elif append and isinstance(value, list):
            current[param] = list(current.get(param, p.default)) + value
        else:
            current[param] = value

    def apply_rules_table(self, table: Any, where: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{where}'{self.table}' must be a table of [{self.table}.NAME] "
                              "tables")
        for name, settings in table.items():
            here = f"{where}[{self.table}.{name}]: "
            self.cls(name, here)
            if not isinstance(settings, dict):
                raise ConfigError(f"{here}must be a table of parameters")
            enabled = settings.get("enabled", True)
            if not isinstance(enabled, bool):
                raise ConfigError(f"{here}enabled must be true or false")
            for key, value in settings.items():
                if key != "enabled":
                    self.set(name, key, value, where=here)
            self.enabled[name] = enabled

    def apply_recipe(self, recipe: dict, source: str, profile: str | None = None) -> None:
        where = f"{source}: "
        top_keys = tuple(self.table if k == "rules" else k for k in TOP_KEYS)
        profile_keys = tuple(self.table if k == "rules" else k for k in PROFILE_KEYS)
        for key in recipe:
            if key not in top_keys:
                raise ConfigError(f"{where}unknown key {key!r} (known: {', '.join(top_keys)})")
        profiles = recipe.get("profiles", {})
        if not isinstance(profiles, dict):
            raise ConfigError(f"{where}'profiles' must be a table of [profiles.NAME] tables")
        chain: list[tuple[str, dict]] = []
        name = profile
        while name is not None:
            if name not in profiles:
                known = ", ".join(profiles) or "none"
                raise ConfigError(f"{where}no profile {name!r} (profiles: {known})")
            if any(n == name for n, _ in chain):
                raise ConfigError(f"{where}profile {name!r} extends itself")
            body = profiles[name]
            if not isinstance(body, dict):
                raise ConfigError(f"{where}[profiles.{name}] must be a table")
            for key in body:
                if key not in profile_keys:
                    raise ConfigError(f"{where}[profiles.{name}]: unknown key {key!r} "
                                      f"(known: {', '.join(profile_keys)})")
            chain.append((name, body))
            name = body.get("extends")
        chain.reverse()
        defaults = recipe.get("defaults", True)
        for _, body in chain:
            defaults = body.get("defaults", defaults)
        if not isinstance(defaults, bool):
            raise ConfigError(f"{where}defaults must be true or false")
        self.use_defaults(defaults)
        if self.table in recipe:
            self.apply_rules_table(recipe[self.table], where)
        for pname, body in chain:
            if self.table in body:
                self.apply_rules_table(body[self.table], f"{where}[profiles.{pname}] ")

    # -- result ------------------------------------------------------------------------------

    def specs(self, global_fields: tuple = ()) -> list[tuple[str, tuple, dict]]:
        """(name, fields, parameters) of each enabled rule, in running order."""
        out = []
        for name, cls in self.registry.items():
            if not self.enabled.get(name):
                continue
            fields = self.fields.get(name) or (global_fields if cls.text_rule else ()) or ()
            out.append((name, tuple(fields), copy.deepcopy(self.values[name])))
        return out

    def build(self, global_fields: tuple = ()) -> list[Rule]:
        return build_rules(self.specs(global_fields))


def build_rules(specs: list[tuple[str, tuple, dict]]) -> list[Rule]:
    rules = []
    for name, fields, values in specs:
        try:
            rules.append(RULES[name](fields, **values))
        except TermFileError as e:
            raise ConfigError(f"rule {name}: {e}") from None
        except ValueError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(("rule ", "--where")) else
                              f"rule {name}: {msg}") from None
    return rules


def load_recipe(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
