"""The `cqia` entry point (and `python -m cqia_cli`).

Ctrl-C or `timeout` may come while Python is still importing click and the command: the first
thing done is to make SIGINT and SIGTERM end the process quietly (130, 143) until cli._run
installs the handlers that clean outputs up; nothing has been written before then.
"""

import os
import signal


def _early_exit(signum, frame):
    os._exit(128 + signum)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _early_exit)
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _early_exit)
    from cqia_cli.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
