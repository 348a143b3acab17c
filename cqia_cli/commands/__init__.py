"""One module per verb; each exposes `cli`, a click command (see cqia_cli.cli.COMMANDS)."""
