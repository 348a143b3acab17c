"""Standard error: warnings, the progress bar and the summary line. Standard output is data only.

The terminal is read once per run (`Env`), so tests can swap the streams.
"""

from __future__ import annotations

import sys
import time

#: Name of the command being run, for the `cqia COMMAND: ...` prefix of every message.
command_name = "cqia"


def prefix() -> str:
    return "cqia" if command_name == "cqia" else f"cqia {command_name}"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def stderr_is_terminal() -> bool:
    return _isatty(sys.stderr)


def stdin_is_terminal() -> bool:
    return _isatty(sys.stdin)


def stdout_is_terminal() -> bool:
    return _isatty(sys.stdout)


def message(text: str) -> None:
    """One line on stderr, prefixed with `cqia COMMAND:`."""
    try:
        sys.stderr.write(f"{prefix()}: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass



def plain(text: str) -> None:
    """A line on stderr without prefix (reports such as `FILE:LINE: field: problem`)."""
    try:
        sys.stderr.write(text + "\n")
    except (OSError, ValueError):
        pass


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0.0%"


def stderr_console():
    """A rich Console on stderr (colour only when stderr is a terminal)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=False)


class Progress:
    """A rich progress display on stderr, shown only when stderr is a terminal and not --quiet.

    `advance(records, done_bytes)` is cheap to call per record: the display refreshes at most
    every 0.1 s. With `total_bytes` (plain input files) it shows a bar, otherwise a counter.
    """

    def __init__(self, label: str, total_bytes: int | None = None, enabled: bool = True):
        self.enabled = enabled and stderr_is_terminal()
        self._next = 0.0
        self._progress = None
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress as RichProgress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
        if total_bytes:
            columns += [BarColumn(), DownloadColumn(), TimeRemainingColumn()]
        columns += [TextColumn("{task.fields[records]:,} records"), TimeElapsedColumn()]
        del MofNCompleteColumn
        self._progress = RichProgress(*columns, console=stderr_console(), transient=True)
        self._task = self._progress.add_task(label, total=total_bytes or None, records=0)
        self._progress.start()

    def advance(self, records: int, done_bytes: int | None = None) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.1
        if done_bytes is not None:
            self._progress.update(self._task, completed=done_bytes, records=records)
        else:
            self._progress.update(self._task, records=records)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
