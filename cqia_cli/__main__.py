"""The `cqia` entry point (and `python -m cqia_cli`).

Ctrl-C or `timeout` may come while Python is still importing click and the command: the first
thing done is to make SIGINT and SIGTERM end the process quietly (130, 143) until cli._run
installs the handlers that clean outputs up; nothing has been written before then.

numpy's OpenBLAS starts a thread per CPU as numpy is imported, and they spin for a while
before they sleep; cqia does no linear algebra, so unless the user chose otherwise there is
one (measured on 2 CPUs: `import numpy` then 0.3 s idle, 0.16 -> 0.06 s of CPU; `cqia dedup`
over 100k records 4.5-4.6 -> 4.3-4.5 s of CPU in the same wall time; more CPUs, more threads).
"""

import os
import signal


def _early_exit(signum, frame):
    os._exit(128 + signum)


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _early_exit)
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _early_exit)
    from cqia_cli.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
