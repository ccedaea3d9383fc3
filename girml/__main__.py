"""``python -m girml`` (and ``accelerate launch -m girml train``) runs the CLI."""

from girml import cli_convert, cli_export
from girml.cli import app

cli_convert.register(app)
cli_export.register(app)
app(prog_name="girml")
