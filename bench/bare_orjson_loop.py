"""The baseline: the least a JSONL filter can do. Read lines, parse, serialise, write."""

import sys

import orjson


def main() -> None:
    paths = sys.argv[1:] or ["-"]
    out = sys.stdout.buffer
    write = out.write
    loads, dumps, nl = orjson.loads, orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for path in paths:
        f = sys.stdin.buffer if path == "-" else open(path, "rb")
        for line in f:
            if line.strip():
                write(dumps(loads(line), option=nl))
    out.flush()


if __name__ == "__main__":
    main()
