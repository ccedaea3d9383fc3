"""``python -m girml`` (and ``accelerate launch -m girml train``) runs the CLI."""

from girml import cli_convert
from girml.cli import app

cli_convert.register(app)
app(prog_name="girml")
