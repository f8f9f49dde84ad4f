"""`sarcomri config`: the JSON Schema of every kind of config file, and a check of one file."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from sarcomri.cli.options import emit_json, json_option, out_option
from sarcomri.config_kinds import CONFIG_KINDS, config_schema, load_any_config
from sarcomri.errors import SarcomriError
from sarcomri.io.atomic import write_text

app = typer.Typer(help="Config files: their JSON Schema (for editors and other tools) and a check of one file.",
                  no_args_is_help=True)

Kind = StrEnum("Kind", {kind: kind for kind in CONFIG_KINDS})


@app.command("schema")
def schema(
    kind: Kind = typer.Argument(..., help="The kind of config: classification (sarcomri classify run), segmentation "
                                "(sarcomri segment train), transfer (sarcomri segment transfer-study) or study "
                                "(sarcomri study run)."),
    out: Path | None = out_option(None, help="Write the schema to this file instead of printing it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Print the JSON Schema of a kind of config file (pydantic's, as the config is validated)."""
    text = json.dumps(config_schema(kind.value), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    write_text(out, text, overwrite=overwrite)
    typer.echo(str(out))


@app.command("validate")
def validate(
    config: Path = typer.Argument(..., help="A config YAML of any kind (e.g. configs/demo-sarcoma.yaml)."),
    kind: Kind | None = typer.Option(None, "--kind", help="The kind of config (guessed from its keys by default)."),
    as_json: bool = json_option("file, kind, valid (true or false), error (null when valid)"),
) -> None:
    """Load a config file as its command would and print one line: valid (with its kind), or the error naming the
    field. An invalid file exits with code 1."""
    try:
        found, _ = load_any_config(config, kind.value if kind else None)
    except SarcomriError as err:
        if not as_json:
            raise
        emit_json({"file": str(config), "kind": kind.value if kind else None, "valid": False, "error": str(err)})
        raise typer.Exit(1) from None
    if as_json:
        emit_json({"file": str(config), "kind": found, "valid": True, "error": None})
        return
    typer.echo(f"{config}: valid {found} config")
