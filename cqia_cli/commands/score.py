"""cqia score: rate each record with a judge model (the paper's 1-10 CQIA scale by default)."""

from __future__ import annotations

import click

from cqia_cli import fields as F
from cqia_cli.commands.llm_options import check_endpoint, llm_options
from cqia_cli.llm.run import Settings
from cqia_cli.options import IOOptions, command, io_options

EXAMPLES = [
    ("Score with a local vLLM, keep 8 and above as the paper did",
     "cqia score --base-url http://localhost:8000/v1 zhihu.jsonl | cqia filter --no-defaults "
     "--threshold '_score >= 8' > best.jsonl"),
    ("What would it send and cost? Nothing is sent",
     "cqia score --model deepseek-chat --dry-run --price-in 2 --price-out 8 data.jsonl"),
    ("Ask three times and keep the mean, with the reasons and the spread",
     "cqia score --samples 3 --reason-into _score_reason data.jsonl > scored.jsonl"),
    ("How does the judge agree with people? Pick the threshold by F1",
     "cqia score --truth human_verified --report agreement.json labelled.jsonl > /dev/null"),
    ("Keep going past failures, keep them aside; a second run retries only those",
     "cqia score --on-error skip --errors failed.jsonl data.jsonl -o scored.jsonl"),
    ("List the shipped rubrics", "cqia score --list-rubrics"),
]


def _list_rubrics(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from cqia_cli.llm.prompts import parse_spec, shipped

    for name, text in shipped("rubrics").items():
        spec = parse_spec(text, name)
        lo, hi = spec.scale
        click.echo(f"{name:<12} {lo:g}-{hi:g}  {spec.description}")
    ctx.exit(0)


class ScoreTask:
    def __init__(self, spec, llm: Settings, *, into: str, reason_into: str | None,
                 samples: int, temperature: float | None, max_tokens: int | None,
                 json_mode: bool | None):
        from cqia_cli.llm.parse import parse_score

        self.spec = spec
        self.into = F.compile_path(into)
        self.reason_into = F.compile_path(reason_into) if reason_into else None
        self.samples = samples
        self.model = llm.model
        base = temperature if temperature is not None else (
            spec.samples_temperature if samples > 1 else (spec.temperature or 0.0))
        self.params = {"temperature": base,
                       "max_tokens": max_tokens or spec.max_tokens or 512}
        use_json = spec.json if json_mode is None else json_mode
        if use_json:
            self.params["response_format"] = {"type": "json_object"}
        self._parse = parse_score
        self.pairs: list = []  # (score, label) for --truth
        self.unlabelled = 0
        self.truth = None

    def messages(self, record: dict) -> list[dict]:
        msgs = []
        if self.spec.system is not None:
            msgs.append({"role": "system", "content": self.spec.system.render(record)})
        msgs.append({"role": "user", "content": self.spec.user.render(record)})
        return msgs

    def bodies(self, record: dict) -> list[dict]:
        msgs = self.messages(record)
        if self.samples == 1:
            return [{"model": self.model, "messages": msgs, **self.params}]
        return [{"model": self.model, "messages": msgs, **self.params, "seed": i}
                for i in range(self.samples)]

    def check(self, answer):
        from cqia_cli.llm.parse import ParseError

        try:
            return self._parse(answer.content, self.spec.scale)
        except ParseError as e:
            if answer.finish == "length":
                raise ParseError(f"{e} (the answer was cut off at max_tokens: raise "
                                 "--max-tokens)") from None
            raise

    def apply(self, record: dict, outcome) -> dict:
        from cqia_cli.llm.parse import as_number

        scores = [v[0] for v in outcome.values]
        mean = sum(scores) / len(scores)
        score = as_number(round(mean, 3))
        F.set(record, self.into, score)
        if self.reason_into is not None:
            if len(scores) == 1:
                F.set(record, self.reason_into, outcome.values[0][1])
            else:
                spread = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
                F.set(record, self.reason_into, {
                    "scores": [as_number(s) for s in scores],
                    "spread": as_number(round(spread, 3)),
                    "reasons": [v[1] for v in outcome.values]})
        if self.truth is not None:
            from cqia_cli.llm.agreement import label

            y = label(F.get(record, self.truth))
            if y is None:
                self.unlabelled += 1
            else:
                self.pairs.append((score, y))
        return record


@command("score", examples=EXAMPLES, short_help="Rate records with a judge model (1-10).",
         exit_codes={65: "bad input data, or (under --on-error fail) an answer with no score "
                         "on the scale",
                     69: "the model endpoint failed: no answer after all retries, or a wrong "
                         "key, URL or model name"})
@io_options()
@click.option("--rubric", default="cqia", show_default=True, metavar="NAME|FILE.toml",
              help="A shipped rubric (--list-rubrics) or your own TOML file: system and user "
                   "templates with {field} placeholders, the scale, the output format.")
@click.option("--list-rubrics", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_rubrics, help="List the shipped rubrics and exit.")
@click.option("--into", default="_score", show_default=True, metavar="FIELD",
              help="Field the score is written to (a number; dotted paths allowed).")
@click.option("--reason-into", metavar="FIELD", default=None,
              help="Also keep the judge's reason here (with --samples: the scores, their "
                   "spread and the reasons).")
@click.option("--samples", type=click.IntRange(1, 20), default=1, show_default=True,
              metavar="K", help="Ask K times (at the rubric's sampling temperature) and write "
                                "the mean.")
@click.option("--truth", metavar="FIELD", default=None,
              help="A human label (true/false, keep/reject, 1/0): after the run, print how the "
                   "judge agrees with it for each threshold, and the best-F1 threshold.")
@click.option("--report", metavar="FILE", default=None,
              help="With --truth: write the agreement as JSON here.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None,
              help="Sampling temperature [default: the rubric's; 0 for one sample].")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, metavar="N",
              help="Longest answer [default: the rubric's, else 512].")
@click.option("--json/--no-json", "json_mode", default=None,
              help="Ask for a JSON answer with response_format [default: the rubric's]; "
                   "--no-json for servers that reject response_format.")
@llm_options("score")
def cli(io: IOOptions, llm: Settings, rubric: str, into: str, reason_into: str | None,
        samples: int, truth: str | None, report: str | None, temperature: float | None,
        max_tokens: int | None, json_mode: bool | None) -> None:
    """Rate each record with a judge model and write the score into --into (default _score).

    The default rubric is the COIG-CQIA paper's 1-10 quality scale for an answer to a question
    (relevance, correctness, helpfulness, completeness, fluency, safety, human-like style),
    asked in Chinese for a JSON answer. Answers are parsed robustly (8, 8/10, 评分：8,
    {"score": 8}); an answer with no score, or a score outside the rubric's scale, is a
    failure of that record.

    Any OpenAI-compatible chat-completions endpoint works (vLLM, Ollama, DeepSeek,
    DashScope, OpenAI). Requests go --concurrency at a time, records come out in input
    order. Every answer is cached (SQLite, or Redis for many machines) as soon as it arrives,
    so a re-run, or a run killed and started again, repeats no request it had an answer for.
    A record whose request fails after all retries, or whose answer has no score, stops the
    run (--on-error fail) or goes to --errors FILE with the reason and the answer (--on-error
    skip); a second run asks again for those only.

    Then `cqia filter --no-defaults --threshold '_score >= 8'` keeps the best, as the paper did.
    """
    from cqia_cli.llm import run as R
    from cqia_cli.llm.prompts import TemplateError, load

    for name, value in (("--into", into), ("--reason-into", reason_into), ("--truth", truth)):
        if value:
            try:
                F.compile_path(value)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint=name) from None
    if report and not truth:
        raise click.UsageError("--report needs --truth FIELD")
    try:
        spec = load("rubrics", rubric)
    except TemplateError as e:
        raise click.BadParameter(str(e), param_hint="--rubric") from None
    check_endpoint(llm)
    with io.job(progress=False, output=not llm.dry_run) as job:
        report_out = job.side_output(report, "report") if report else None
        R.resolve_model(llm)
        task = ScoreTask(spec, llm, into=into, reason_into=reason_into, samples=samples,
                         temperature=temperature, max_tokens=max_tokens, json_mode=json_mode)
        task.truth = F.compile_path(truth) if truth else None
        stats = R.run(job, llm, task, quiet=io.quiet)
        if llm.dry_run:
            return
        R.summary(job, stats, llm)
        if truth:
            _agreement(job, task, truth, into, report_out)


def _agreement(job, task: ScoreTask, truth: str, into: str, report_out) -> None:
    import orjson

    from cqia_cli import console
    from cqia_cli.llm.agreement import agreement, table

    result = agreement(task.pairs, task.spec.scale, task.unlabelled)
    result["truth"] = truth
    result["into"] = into
    for line in table(result, truth, into):
        console.plain(line)
    if report_out is not None:
        report_out.write_raw(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
