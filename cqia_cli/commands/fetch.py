"""cqia fetch: read datasets from the Hugging Face Hub, URLs and files as one JSONL stream."""

from __future__ import annotations

import os
import re

import click

from cqia_cli.options import IOOptions, command, io_options

EXAMPLES = [
    ("Fetch the Ruozhiba subset of COIG-CQIA from the Hugging Face Hub",
     "cqia fetch cqia/ruozhiba -o ruozhiba.jsonl"),
    ("The same through a mirror, then straight into the pipeline",
     "HF_ENDPOINT=https://hf-mirror.com cqia fetch cqia/all | cqia validate | cqia dedup "
     "> cqia.jsonl"),
    ("Files of any dataset on the hub, by glob, with provenance in each record",
     "cqia fetch --add-source 'hf://datasets/m-a-p/COIG-CQIA/douban/*.jsonl'"),
    ("A compressed file at a URL, checked against its published sha256",
     "cqia fetch --sha256 \"$(cut -d' ' -f1 qa.jsonl.gz.sha256)\" https://example.org/qa.jsonl.gz"),
    ("Local scrapes in CSV and Parquet, and a JSON array, as one stream",
     "cqia fetch scrape/*.csv extra.parquet answers.json > raw.jsonl"),
    ("A quick look at the first 5 records", "cqia fetch --limit 5 cqia/zhihu"),
    ("Work on a train: only what is cached", "cqia fetch --offline cqia/all > cqia.jsonl"),
    ("The built-in catalog of short names", "cqia fetch --list"),
]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _parse_sha256(values: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    by_url: dict[str, str] = {}
    bare: list[str] = []
    for value in values:
        url, sep, digest = value.rpartition("=")
        digest = digest.strip()
        if not _HEX64.fullmatch(digest):
            raise click.BadParameter(f"{value!r}: expected [URL=]HEX with 64 hex digits",
                                     param_hint="--sha256")
        if sep:
            by_url[url.strip()] = digest.lower()
        else:
            bare.append(digest.lower())
    return by_url, bare


@command(
    "fetch",
    examples=EXAMPLES,
    exit_codes={66: "a source does not exist, cannot be downloaded (HTTP 404, 401, no network "
                    "after the retries), fails its size or sha256 check, or is not cached "
                    "under --offline",
                74: "an output or the download cache cannot be written (disk full, permission, "
                    "output names an input)"},
    short_help="Read datasets from the Hugging Face Hub, URLs and files as one JSONL stream.",
)
@io_options(files=False)
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "csv", "tsv", "parquet"]),
              default=None,
              help="Read every source as this container [default: by suffix, else by content].")
@click.option("--add-source", is_flag=True,
              help='Add `_source: {"uri": ..., "line": N}` to each record: where it came from.')
@click.option("--limit", type=click.IntRange(min=0), default=None, metavar="N",
              help="Stop after N records (files past them are not downloaded).")
@click.option("--list", "list_catalog", is_flag=True,
              help="Print the catalog of short names (built-in and user) and exit.")
@click.option("--catalog", "catalogs", multiple=True, metavar="FILE",
              type=click.Path(),  # read: checked by io.check_inputs (66)
              help="A TOML file of more catalog entries (repeatable); "
                   "$XDG_CONFIG_HOME/cqia/catalog.toml is read when it exists.")
@click.option("--endpoint", envvar=["CQIA_FETCH_ENDPOINT", "HF_ENDPOINT"], metavar="URL", default=None,
              help="Hugging Face Hub endpoint, e.g. a mirror [env HF_ENDPOINT; default "
                   "https://huggingface.co].")
@click.option("--token", envvar=["CQIA_FETCH_TOKEN", "HF_TOKEN"], metavar="TOKEN", default=None, show_envvar=False,
              help="Hub access token for private or gated sets [env HF_TOKEN; else the token "
                   "saved by `hf auth login`].")
@click.option("--cache-dir", metavar="DIR", default=None,
              help="Where downloads are kept [default: $XDG_CACHE_HOME/cqia/fetch, i.e. "
                   "~/.cache/cqia/fetch].")
@click.option("--offline", is_flag=True,
              help="Use only the cache; fail on what is not in it [also HF_HUB_OFFLINE=1].")
@click.option("--refresh", is_flag=True,
              help="Download again even what is cached (a URL whose content changed).")
@click.option("--sha256", "sha256s", multiple=True, metavar="[URL=]HEX",
              help="Expected sha256 of a URL's content (repeatable; a bare HEX when there is "
                   "one URL). Hub files are checked against the hub's own sha256.")
@click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
              metavar="N", help="Tries after a timeout, a dropped connection or a 5xx answer.")
@click.option("--backoff", type=click.FloatRange(min=0), default=1.0, show_default=True,
              metavar="SECONDS", help="First wait between tries; doubles after each (max 60).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              metavar="SECONDS", help="Give up on a silent connection after this long.")
def cli(io: IOOptions, sources: tuple[str, ...], fmt: str | None, add_source: bool,
        limit: int | None, list_catalog: bool, catalogs: tuple[str, ...], endpoint: str | None,
        token: str | None, cache_dir: str | None, offline: bool, refresh: bool,
        sha256s: tuple[str, ...], retries: int, backoff: float, timeout: float) -> None:
    """Read records from the Hugging Face Hub, URLs and local files as one JSON Lines stream.

    A SOURCE is `-` (standard input), hf://datasets/OWNER/NAME[@REVISION]/PATH-OR-GLOB (files
    of a dataset on the hub), an http:// or https:// URL, a local file, folder or glob, or a
    short name from the catalog (cqia/ruozhiba, cqia/all, ...; see --list). Sources are read
    in the order given; a glob or folder in path order. No SOURCE reads standard input.

    Each file is JSON Lines, a JSON array, CSV/TSV (a header line; values are strings) or
    Parquet (needs the extra: pip install 'cqia[parquet]'), told by its suffix or its first
    bytes, and may be compressed (.gz .bz2 .xz .zst). A bad record is reported as
    `SOURCE:LINE: problem`, the same as for a local file, and --on-error decides.

    Downloads are cached (--cache-dir), resumed after an interruption (HTTP Range), checked
    (size, and sha256 where the hub or --sha256 gives one; a cached copy is checked each time it
    is used and fetched again when corrupt), retried with exponential backoff after timeouts and
    5xx answers, and shown with a byte progress bar on a terminal. Two fetches of one file at
    the same time share one download. --offline (or HF_HUB_OFFLINE=1) reads only the cache.
    """
    from cqia_cli import console
    from cqia_cli.fetching import catalog as catalog_mod

    from cqia_cli.io import check_inputs

    check_inputs(catalogs)  # before anything: a directory or missing file is 66, in one line
    entries = catalog_mod.load(catalogs)
    if list_catalog:
        click.echo(catalog_mod.table(entries), nl=False)
        return

    from cqia_cli.fetching.hub import Hub, env_offline, find_token
    from cqia_cli.fetching.sources import FetchReader, Resolver, is_url
    from cqia_cli.fetching.transport import Cache, Settings, default_cache_dir
    from cqia_cli.io import Job

    specs = list(sources) or ["-"]
    by_url, bare = _parse_sha256(sha256s)
    if bare:
        urls = [s for s in specs if is_url(s)]
        if len(urls) != 1 or len(bare) != 1:
            raise click.BadParameter("a bare HEX needs exactly one URL source; give URL=HEX",
                                     param_hint="--sha256")
        by_url[urls[0]] = bare[0]

    def note(text: str) -> None:
        if not io.quiet:
            console.message(text)

    settings = Settings(
        cache_dir=os.path.expanduser(cache_dir) if cache_dir else default_cache_dir(),
        offline=offline or env_offline(), refresh=refresh, retries=retries, backoff=backoff,
        timeout=timeout, progress=not io.quiet, note=note,
    )
    cache = Cache(settings.cache_dir, settings)
    resolver = Resolver(cache, lambda: Hub(endpoint, find_token(token), cache), entries, by_url)
    resolved = resolver.resolve(specs)
    # local inputs: checked by Job (stdin once, -o never over one of them)
    local = [s.path for s in resolved if s.remote is None]
    remote = len(local) < len(resolved)

    def make_reader(errors_out):
        return FetchReader(resolved, cache, encoding=io.encoding, on_error=io.on_error,
                           errors_out=errors_out, fmt=fmt, add_source=add_source)

    with Job(local, encoding=io.encoding, on_error=io.on_error, errors=io.errors,
             output=io.output, quiet=io.quiet, progress=not remote, reader=make_reader) as job:
        # downloads show their own byte bars; a run over local files gets the usual progress
        reader = job.reader
        write = job.out.write
        n = 0
        if limit != 0:
            for rec in job.records():
                write(rec)
                n += 1
                if limit is not None and n >= limit:
                    break
        files = len(reader.readers)
        parts = [f"{cache.downloaded:,} downloaded" if cache.downloaded else "",
                 f"{cache.hits:,} from the cache" if cache.hits else ""]
        detail = ", ".join(p for p in parts if p)
        job.summary(f"fetch: {n:,} records from {files:,} file{'s' if files != 1 else ''}"
                    + (f" ({detail})" if detail else ""))
