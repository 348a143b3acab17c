"""cqia fetch against the bare orjson loop: a local file, and a URL on a 127.0.0.1 server
(downloaded again each run with --refresh, then served from the cache).

    python bench/bench_fetch.py [--records N]

A local file goes through the same core reader as every command, so its ratio should match
validate's. A download adds the transfer and a sha256 of the file; a cache hit re-hashes it.
"""

import functools
import os
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from harness import arg_parser, BARE_ORJSON_LOOP, big_input, cqia_command, measure, report


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main() -> None:
    ap = arg_parser()
    args = ap.parse_args()
    data = big_input(args.records)
    n = args.records
    cqia = cqia_command()
    handler = functools.partial(_Quiet, directory=os.path.dirname(data))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{os.path.basename(data)}"
    try:
        with tempfile.TemporaryDirectory() as cache:
            fetch = cqia + ["fetch", "-q", "--cache-dir", cache]
            base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                           repeat=args.repeat)
            results = [
                base,
                measure("cqia fetch FILE", fetch + [data], records=n, repeat=args.repeat),
                measure("cqia fetch --add-source FILE", fetch + ["--add-source", data],
                        records=n, repeat=args.repeat),
                measure("cqia fetch --refresh URL (download)", fetch + ["--refresh", url],
                        records=n, repeat=args.repeat),
                measure("cqia fetch URL (cached)", fetch + [url], records=n, repeat=args.repeat),
            ]
    finally:
        server.shutdown()
    report(results, base, title=f"fetch, {n:,} records", json_path=args.json)


if __name__ == "__main__":
    main()
