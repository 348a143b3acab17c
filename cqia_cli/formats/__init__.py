"""Record formats and containers for `cqia convert`: plain functions over dicts, no click.

- chat.py: the formats (cqia, alpaca, sharegpt, messages, text), their readers and writers
  through one neutral form, role-order validation, and format detection.
- build.py: building COIG-CQIA records from raw ones (--map, --set, --template).
- containers.py: JSON arrays and CSV/TSV inputs, read with the core's error reporting.
- llamafactory.py: LLaMA-Factory dataset_info.json entries.
- converter.py: one record in, one record out.
"""
