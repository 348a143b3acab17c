"""cqia validate (the I/O core plus the schema check) against the bare orjson loop.

    python bench/bench_validate.py [--records N]

Target (issue 2): the I/O core costs at most 25% over the bare loop, i.e. ratio >= 0.8.
"""


from harness import arg_parser, BARE_ORJSON_LOOP, big_input, cqia_command, measure, report


def main() -> None:
    ap = arg_parser()
    args = ap.parse_args()
    data = big_input(args.records)
    n = args.records
    cqia = cqia_command()
    base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                   repeat=args.repeat)
    results = [
        base,
        measure("cqia validate", cqia + ["validate", "-q", data], records=n, repeat=args.repeat),
        measure("cqia validate < stdin", cqia + ["validate", "-q"], stdin=data, records=n,
                repeat=args.repeat),
    ]
    report(results, base, title=f"validate, {n:,} records", json_path=args.json)


if __name__ == "__main__":
    main()
