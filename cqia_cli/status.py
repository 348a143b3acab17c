"""Exit statuses of every cqia command, defined once (see CONVENTIONS.md and EXIT STATUS in the man pages)."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # a check the user asked for failed (validate found invalid records)
    USAGE = 2  # unknown option, bad value (click's own)
    DATA = 65  # bad input data: invalid JSON, not an object, undecodable bytes (EX_DATAERR)
    NO_INPUT = 66  # an input file does not exist or cannot be read (EX_NOINPUT)
    UNAVAILABLE = 69  # a service the command needs failed (the model endpoint) (EX_UNAVAILABLE)
    SOFTWARE = 70  # an internal error: a bug in cqia (EX_SOFTWARE)
    IO = 74  # an output cannot be written (EX_IOERR)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    PIPE = 141  # the downstream pipe closed early, as `cat` ends (128 + SIGPIPE)
    TERMINATED = 143  # SIGTERM (128 + SIGTERM)


#: One line per status, for --help epilogs and the EXIT STATUS section of the man pages.
DESCRIPTIONS = {
    ExitStatus.OK: "success",
    ExitStatus.CHECK_FAILED: "a check the user asked for failed",
    ExitStatus.USAGE: "usage error: unknown option, bad value",
    ExitStatus.DATA: "bad input data: invalid JSON, a line that is not an object, undecodable bytes",
    ExitStatus.NO_INPUT: "an input file does not exist or cannot be read",
    ExitStatus.SOFTWARE: "internal error (a bug: please report it; --debug shows the traceback)",
    ExitStatus.IO: "an output cannot be written (disk full, permission, output names an input)",
    ExitStatus.INTERRUPTED: "interrupted (Ctrl-C); no partial output file is left",
    ExitStatus.PIPE: "the reader of standard output went away (e.g. `| head`); ends quietly like cat",
    ExitStatus.TERMINATED: "terminated (SIGTERM); no partial output file is left",
}


#: The signal (SIGINT, SIGTERM) this process is ending for, once it is known: from its own
#: handler (cli._on_signal) or from a -j worker that the signal ended first (parallel._died).
#: The handler ignores any signal after it, so that none is raised again during the way out:
#: in a generator's `finally` run as the generator is freed, Python would print "Exception
#: ignored" and a traceback. cli._run empties it as a command starts.
SIGNALLED: list[int] = []


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that outputs are cleaned up on the way out."""


class Interrupted(BaseException):
    """SIGINT (Ctrl-C), as an exception of cqia's own: click would print a blank line for a
    KeyboardInterrupt before cqia's one-line message."""


class CqiaError(Exception):
    """An error reported as one line `cqia CMD: message` with an exit status; never a traceback."""

    status = ExitStatus.SOFTWARE

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = ExitStatus(status)


class DataError(CqiaError):
    status = ExitStatus.DATA


class InputError(CqiaError):
    status = ExitStatus.NO_INPUT


class OutputError(CqiaError):
    status = ExitStatus.IO


class CheckFailed(CqiaError):
    """Raised at the very end of a command whose check failed; output was already written."""

    status = ExitStatus.CHECK_FAILED
