"""``python -m girml`` (and ``accelerate launch -m girml train``) runs the CLI."""

from girml.cli import app

app(prog_name="girml")
