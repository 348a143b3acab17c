"""cqia generate: fill or rewrite a field with a model, from a prompt template."""

from __future__ import annotations

import click

from cqia_cli import fields as F
from cqia_cli.commands.llm_options import check_endpoint, llm_options
from cqia_cli.llm.run import Settings
from cqia_cli.options import IOOptions, command, io_options, parse_assignments

EXAMPLES = [
    ("Answer the questions that have no answer yet, in the CQIA style, and mark them",
     "cqia generate --prompt answer --only-missing --set answer_from=llm --set "
     "human_verified=false --model-into _model questions.jsonl > answered.jsonl"),
    ("Rewrite scraped posts into clean instructions (into instruction)",
     "cqia generate --prompt rewrite --model qwen-plus scraped.jsonl > rewritten.jsonl"),
    ("Explain exam answers: the explanation replaces output",
     "cqia generate --prompt explain exam.jsonl > explained.jsonl"),
    ("Your own template, inline, into a new field",
     "cqia generate --prompt '把下面的问题翻译成英文：{instruction}' --into instruction_en "
     "data.jsonl"),
    ("See what it would send and cost first",
     "cqia generate --prompt answer --dry-run --price-in 0.8 --price-out 2 data.jsonl"),
    ("List the shipped prompts", "cqia generate --list-prompts"),
]


def _list_prompts(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from cqia_cli.llm.prompts import parse_spec, shipped

    for name, text in shipped("prompts").items():
        spec = parse_spec(text, name)
        click.echo(f"{name:<10} -> {spec.into or '?':<12} {spec.description}")
    ctx.exit(0)


class GenerateTask:
    def __init__(self, spec, llm: Settings, *, into: str, system: str | None,
                 temperature: float | None, max_tokens: int | None, only_missing: bool,
                 assignments: dict, model_into: str | None):
        from cqia_cli.llm.prompts import Template

        self.spec = spec
        self.into = F.compile_path(into)
        self.system = Template(system) if system is not None else spec.system
        self.model = llm.model
        t = temperature if temperature is not None else spec.temperature
        self.params = {"temperature": 0.7 if t is None else t,
                       "max_tokens": max_tokens or spec.max_tokens or 1024}
        self.only_missing = only_missing
        self.assignments = [(F.compile_path(k), v) for k, v in assignments.items()]
        self.model_into = F.compile_path(model_into) if model_into else None

    def bodies(self, record: dict) -> list[dict] | None:
        if self.only_missing and F.as_text(F.get(record, self.into)).strip():
            return None
        msgs = []
        if self.system is not None:
            msgs.append({"role": "system", "content": self.system.render(record)})
        msgs.append({"role": "user", "content": self.spec.user.render(record)})
        return [{"model": self.model, "messages": msgs, **self.params}]

    def check(self, answer) -> str:
        from cqia_cli.llm.parse import ParseError, strip_thinking

        text = strip_thinking(answer.content).strip()
        if answer.finish == "length":
            raise ParseError(f"the answer was cut off at max_tokens "
                             f"{self.params['max_tokens']} (raise --max-tokens)")
        if not text:
            raise ParseError("empty answer")
        return text

    def apply(self, record: dict, outcome) -> dict:
        F.set(record, self.into, outcome.values[0])
        for path, value in self.assignments:
            F.set(record, path, value)
        if self.model_into is not None:
            F.set(record, self.model_into, self.model)
        return record


@command("generate", examples=EXAMPLES, short_help="Fill or rewrite a field with a model.",
         exit_codes={65: "bad input data (or a record lacking a field the prompt uses), or "
                         "(under --on-error fail) an empty or cut-off answer",
                     69: "the model endpoint failed: no answer after all retries, or a wrong "
                         "key, URL or model name"})
@io_options()
@click.option("--prompt", "prompt", required=False, metavar="NAME|FILE.toml|TEXT",
              help="A shipped prompt (--list-prompts), a TOML file (system, user, temperature, "
                   "max_tokens), or the user template itself, with {field} placeholders.")
@click.option("--list-prompts", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_prompts, help="List the shipped prompts and exit.")
@click.option("--into", metavar="FIELD", default=None,
              help="Field the answer is written to [default: the shipped prompt's].")
@click.option("--system", metavar="TEXT", default=None,
              help="System message (a template too); replaces the prompt file's.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None,
              help="Sampling temperature [default: the prompt's, else 0.7].")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="Longest answer [default: the prompt's, else 1024]; an answer cut off here "
                   "is a failure of its record.")
@click.option("--only-missing", is_flag=True,
              help="Only records whose --into field is missing or empty; the others pass "
                   "through untouched, with no request.")
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="Also set FIELD on each generated record (repeatable; VALUE is JSON when it "
                   "parses: --set answer_from=llm --set human_verified=false).")
@click.option("--model-into", metavar="FIELD", default=None,
              help="Record the model name in this field of each generated record.")
@llm_options("generate")
def cli(io: IOOptions, llm: Settings, prompt: str | None, into: str | None,
        system: str | None, temperature: float | None, max_tokens: int | None,
        only_missing: bool, assignments: tuple, model_into: str | None) -> None:
    """Fill or rewrite a field of each record with a model's answer to a prompt template.

    The template's {field} placeholders are any dotted paths into the record
    ({instruction}, {metadata.title}); {field?} may be missing. Shipped prompts, in Chinese:
    answer (answer a question in the COIG-CQIA style, as for Ruozhiba; into output), rewrite
    (a scraped post into a clean instruction; into instruction), explain (explain an exam
    answer; into output).

    The same core as cqia score: any OpenAI-compatible endpoint, --concurrency requests in
    flight, output in input order, every answer cached as it arrives (a re-run or a restart
    after a kill repeats nothing received), retries with backoff, --dry-run, accounting, and
    --on-error with --errors FILE keeping the reason and the answer.
    """
    from cqia_cli.llm import run as R
    from cqia_cli.llm.prompts import PromptSpec, Template, TemplateError, load, shipped

    if not prompt:
        raise click.UsageError("give --prompt NAME|FILE.toml|TEXT (--list-prompts shows the "
                               "shipped ones)")
    try:
        if prompt in shipped("prompts") or prompt.endswith(".toml"):
            spec = load("prompts", prompt)
        else:
            spec = PromptSpec(name="inline", user=Template(prompt), source="--prompt")
        if system is not None:
            Template(system)
    except TemplateError as e:
        raise click.BadParameter(str(e), param_hint="--prompt") from None
    into = into or spec.into
    if not into:
        raise click.UsageError("give --into FIELD: the field the answer is written to")
    for name, value in (("--into", into), ("--model-into", model_into)):
        if value:
            try:
                F.compile_path(value)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint=name) from None
    values = {k: R.as_value(v) for k, v in parse_assignments(assignments, "--set").items()}
    check_endpoint(llm)
    with io.job(progress=False, output=not llm.dry_run) as job:
        R.resolve_model(llm)
        task = GenerateTask(spec, llm, into=into, system=system, temperature=temperature,
                            max_tokens=max_tokens, only_missing=only_missing,
                            assignments=values, model_into=model_into)
        stats = R.run(job, llm, task, quiet=io.quiet)
        if not llm.dry_run:
            R.summary(job, stats, llm)
