"""Record formats for `cqia convert`: plain functions over dicts, no click.

- chat.py: the formats (cqia, alpaca, sharegpt, messages, text), their readers and writers
  through one neutral form, role-order validation, and format detection.
- build.py: building COIG-CQIA records from raw ones (--map, --set, --template).
- cells.py: typing CSV/TSV cells (JSON columns, human_verified); the containers themselves
  are read by cqia_cli/containers.py, shared with fetch.
- llamafactory.py: LLaMA-Factory dataset_info.json entries.
- converter.py: one record in, one record out.
"""
