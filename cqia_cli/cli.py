"""The `cqia` command group. Verbs are imported only when called, so `cqia --help` is fast.

Every error ends here as one line on stderr (`cqia COMMAND: message`) with the exit status of
cqia_cli.status; a traceback only with --debug (or CQIA_DEBUG=1).
"""

from __future__ import annotations

import _thread
import importlib
import importlib.util
import os
import signal
import sys
import threading
import time

import click

from cqia_cli import console
from cqia_cli.status import SIGNALLED, CqiaError, ExitStatus, Interrupted, Terminated

#: The verbs in pipeline order: name -> (module, one-line summary). The summary is shown by
#: `cqia --help` without importing the module (so it stays fast); it is a copy of the command's
#: own short_help, which owns it: tests/test_docs.py fails when they differ. A verb whose module
#: is absent is not listed.
COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": ("cqia_cli.commands.fetch",
              "Read datasets from the Hugging Face Hub, URLs and files as one JSONL stream."),
    "validate": ("cqia_cli.commands.validate",
                 "Check records against the COIG-CQIA schema."),
    "clean": ("cqia_cli.commands.clean",
              "Repair text (whitespace, HTML, mojibake, LaTeX escapes, PII...); log every change."),
    "filter": ("cqia_cli.commands.filter",
               "Drop low-quality records by rules; explain every rejection."),
    "score": ("cqia_cli.commands.score",
              "Rate records with a judge model (1-10)."),
    "generate": ("cqia_cli.commands.generate",
                 "Fill or rewrite a field with a model."),
    "dedup": ("cqia_cli.commands.dedup",
              "Remove exact and near duplicates (MinHash LSH)."),
    "stats": ("cqia_cli.commands.stats",
              "Report counts, lengths, categories, duplicates and diversity of a dataset."),
    "split": ("cqia_cli.commands.split",
              "Split records into train/valid/test sets or shards, deterministically."),
    "convert": ("cqia_cli.commands.convert",
                "Convert between cqia, alpaca, sharegpt, messages and text formats."),
    "review": ("cqia_cli.commands.review",
               "Read records in the terminal; accept, reject or fix them; estimate quality."),
}

_debug = False


def available_commands() -> list[str]:
    return [name for name, (module, _) in COMMANDS.items()
            if importlib.util.find_spec(module) is not None]


class _PipeClosed(Exception):
    """The reader of standard output went away."""


class CqiaGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return available_commands()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or name not in available_commands():
            return None
        module = importlib.import_module(COMMANDS[name][0])
        console.command_name = name
        return getattr(module, "cli")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # click would turn EPIPE into status 1; a closed pipe ends quietly, as cat does
            raise _PipeClosed() from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        extra.setdefault("auto_envvar_prefix", "CQIA")
        console.command_name = "cqia"
        status = _run(lambda: super(CqiaGroup, self).main(
            args, prog_name or "cqia", complete_var, standalone_mode=False, **extra))
        if standalone_mode:
            _freeze_for_exit()
            sys.exit(status)
        return status


def _freeze_for_exit() -> None:
    """The command is done: the objects left are only freed as the interpreter ends, where its
    cyclic garbage collector walks every one of them again, several times, to find no garbage.
    Frozen, they are still freed by reference count (files close and flush as before); only
    those walks are skipped. Measured: `dedup` over 100k records, 45-60 -> 20-30 ms from the
    last atexit handler to the end of the process (`-j 1` and `-j 2` alike); whole runs on
    3,000 records (medians of 8): validate 104 -> 95 ms, stats 208 -> 180, dedup 398 -> 354."""
    import gc

    gc.collect()  # what is garbage now is finalised now, as the interpreter's end would
    gc.freeze()


_signalled = SIGNALLED  # status.SIGNALLED, the one record (a -j worker's end adds to it too)
#: set once the command's function has returned or raised: what is left is the way out (its
#: message, the clean-up), where a signal's exception would escape `_run` with a traceback
_leaving: list[bool] = []


def _on_signal(signum, frame):
    """The first SIGTERM or SIGINT becomes an exception (outputs are removed on the way out);
    a second one, while that cleanup runs, is ignored so that it cannot leave a temporary file
    (Ctrl-C and `timeout` signal the whole group, and a shell may signal twice). One that
    comes once the command is on its way out (`_leaving`) is ignored too: the watchdog, armed
    by the signal watcher, still bounds what is left."""
    if _signalled or _leaving:
        return
    if _watchdog_enabled:
        _arm_watchdog(128 + signum)
    if _in_import(frame):
        # an exception raised in the import machinery can be swallowed (a module lock's
        # weakref callback prints it, "Exception ignored", and the import goes on): the signal
        # is sent again in a moment, when the import is over (the watchdog is armed already)
        _redeliver(signum)
        return
    _signalled.append(signum)
    hold = getattr(sys.modules.get("cqia_cli.io"), "SIGNAL_HOLD", None)
    if hold is not None and hold["on"]:  # outputs being put into place: raised once all are
        hold["held"].append(signum)
        return
    raise Terminated() if signum == signal.SIGTERM else Interrupted()


def _io_live_temp() -> set:
    return getattr(sys.modules.get("cqia_cli.io"), "LIVE_TEMP", set())


def _in_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _redeliver(signum: int) -> None:
    def later() -> None:
        time.sleep(0.005)
        os.kill(os.getpid(), signum)

    try:
        _thread.start_new_thread(later, ())
    except Exception:  # noqa: BLE001 - then raised now, as before
        _signalled.append(signum)
        raise Terminated() if signum == signal.SIGTERM else Interrupted() from None


#: armed by the real command (main()), never when a test runner calls the group in process
_watchdog_enabled = False
#: how long the orderly way out (outputs removed, workers reaped) may take after a signal
WATCHDOG_SECONDS = 1.5


#: the watchdog is armed once per process (by the handler, or by the signal watcher first)
_armed: list[int] = []


def _arm_watchdog(status: int) -> None:
    """The last resort behind the orderly way out of a signal. The exception raised by the
    handler can land while this process holds a lock that its clean-up needs again (inside a
    multiprocessing queue, a thread start, an import); rather than wait for ever, a bare thread
    (no `threading` locks, no imports) removes the temporary files and kills the workers still
    listed, then exits with `status`, if the process is still there after WATCHDOG_SECONDS."""
    if _armed:
        return
    _armed.append(status)
    try:
        _thread.start_new_thread(_watchdog, (status,))
    except Exception:  # noqa: BLE001 - the orderly way out still runs
        pass


def _start_signal_watcher() -> None:
    """Arm the watchdog the moment SIGINT or SIGTERM arrives, not when the main thread next
    runs Python code: Python runs a signal's handler between two bytecodes of the main thread,
    so a parent inside one long C call (a numpy sort of millions of signatures) would otherwise
    not even start the two seconds it has to end. The C-level handler writes the signal's
    number to the wakeup descriptor (signal.set_wakeup_fd) at once, whatever thread the kernel
    chose; a bare thread waiting on it arms the watchdog when the signal is one the command's
    handler (`_on_signal`) would act on. It needs the GIL to do so: a C call that releases it
    (numpy's sorts and ufuncs, hashing, compression, I/O) is covered, one that holds it for
    seconds cannot be reached from Python at all. Main thread only; a no-op where the wakeup
    descriptor cannot be set."""
    import socket

    try:
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except (ValueError, OSError):
        return

    def watch() -> None:
        keep = writer  # noqa: F841 - the write end lives as long as the watcher
        while True:
            try:
                data = reader.recv(64)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in (signal.SIGINT, signal.SIGTERM) and \
                        signal.getsignal(signum) is _on_signal:
                    _arm_watchdog(128 + signum)

    try:
        _thread.start_new_thread(watch, ())
    except Exception:  # noqa: BLE001 - the handler still arms the watchdog
        signal.set_wakeup_fd(-1)


def _watchdog(status: int) -> None:
    time.sleep(WATCHDOG_SECONDS)
    for name, attr in (("cqia_cli.io", "LIVE_TEMP"), ("cqia_cli.parallel", "LIVE_WORKERS")):
        for item in list(getattr(sys.modules.get(name), attr, ())):
            try:
                if isinstance(item, str):
                    os.unlink(item)
                else:
                    os.kill(item, signal.SIGKILL)
            except OSError:
                pass
    os._exit(status)


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _unraisable(hook_args) -> None:
    """sys.unraisablehook while a command runs. The exception a signal's handler raises
    (`_on_signal`'s, or the KeyboardInterrupt of score's and generate's event loop) can land
    where Python cannot propagate it: in a generator's `finally` run as the generator is freed,
    in a weakref callback (asyncio's set of tasks), in a __del__. Python would print "Exception
    ignored" and a traceback, and the command would go on as if no signal had come. The signal
    is sent again instead, to be raised where it can be."""
    exc = hook_args.exc_value
    if isinstance(exc, (Terminated, Interrupted, KeyboardInterrupt)):
        if not _leaving:  # else the command is ending already
            _signalled.clear()
            _redeliver(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
        return
    _previous_unraisable(hook_args)


_previous_unraisable = sys.unraisablehook


def _run(fn) -> int:
    global _previous_unraisable
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        _signalled.clear()
        _leaving.clear()
        old_term = signal.signal(signal.SIGTERM, _on_signal)
        old_int = signal.getsignal(signal.SIGINT)
        if old_int is not signal.SIG_IGN:  # a background job of a shell ignores it
            signal.signal(signal.SIGINT, _on_signal)
        _previous_unraisable = old_unraisable = sys.unraisablehook
        sys.unraisablehook = _unraisable
    try:
        try:
            rv = fn()
            try:
                sys.stdout.flush()  # a signal still ends a flush blocked on a slow reader
            except BrokenPipeError:
                _quiet_stdout()
                rv = ExitStatus.PIPE
        except BaseException:
            if in_main:
                _leaving.append(True)
            raise
        if in_main:
            _leaving.append(True)
        return rv if isinstance(rv, int) else ExitStatus.OK
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        # one line, like every other error: `cqia COMMAND: problem (see --help)`
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        console.message(e.format_message().replace("\n", " ") + hint)
        return e.exit_code
    except click.ClickException as e:
        console.message(e.format_message().replace("\n", " "))
        return e.exit_code
    except click.exceptions.Abort:
        console.message("interrupted")
        return ExitStatus.INTERRUPTED
    except CqiaError as e:
        if _debug:
            import traceback

            traceback.print_exc()
        if e.message:
            console.message(e.message)
        return int(e.status)
    except (BrokenPipeError, _PipeClosed):
        _quiet_stdout()
        return ExitStatus.PIPE
    except (KeyboardInterrupt, Interrupted):
        console.message("interrupted")
        return ExitStatus.INTERRUPTED
    except Terminated:
        console.message("terminated")
        return ExitStatus.TERMINATED
    except MemoryError:
        console.message("out of memory")
        return ExitStatus.SOFTWARE
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a bare traceback
        if _debug:
            import traceback

            traceback.print_exc()
        console.message(f"internal error: {type(e).__name__}: {e} (run with --debug for a "
                        "traceback, and please report it)")
        return ExitStatus.SOFTWARE
    finally:
        # whatever ended the run, it leaves no temporary file (a Job removes its outputs'
        # own; this is for one that a signal hit before its Job knew it)
        live = _io_live_temp()
        for tmp in list(live):
            try:
                os.unlink(tmp)
            except OSError:
                pass
            live.discard(tmp)
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)
            sys.unraisablehook = old_unraisable
            _leaving.clear()


def _set_debug(ctx, param, value):
    global _debug
    _debug = bool(value) or os.environ.get("CQIA_DEBUG", "") not in ("", "0")
    return value


def _show_version(ctx: click.Context, _param, value: bool) -> None:
    """--version: the installed version, looked up only then (importlib.metadata costs ~35 ms
    at every start)."""
    if not value or ctx.resilient_parsing:
        return
    import cqia_cli

    click.echo(f"cqia {cqia_cli.__version__}")
    ctx.exit()


@click.group(
    cls=CqiaGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Show the version and exit.")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="Show a traceback on errors (for bug reports).")
def cli() -> None:
    """Curate Chinese instruction-tuning (SFT) data with small composable commands.

    Each command reads JSON Lines from FILEs or standard input and writes JSON Lines to
    standard output, so they pipe:

    \b
      cqia validate raw.jsonl | cqia filter | cqia dedup | cqia split -o 'out/{split}.jsonl'

    Run `cqia COMMAND --help` or `man cqia-COMMAND` for one command.
    """


def _preload() -> None:
    """Import the C extension every command uses while __main__'s first handler is still in
    place (a signal ends the process at once), not under `_on_signal`, which raises: that
    exception, raised inside orjson's module initialisation by a SIGTERM that came as it was
    imported, crashed the interpreter (SIGSEGV: 4 of 120 signals sent 80-200 ms after the
    start). `cqia`, `cqia --help` and `--version` stay without it (they import no command)."""
    args = sys.argv[1:2]
    if not args or args[0] in ("-h", "--help", "-V", "--version"):
        return
    import orjson  # noqa: F401


def main() -> None:
    global _watchdog_enabled
    _watchdog_enabled = True
    _start_signal_watcher()
    _preload()
    cli.main(prog_name="cqia")
