"""The ``girml`` command: the library's stage verbs plus the orchestration tools.

`girml/cli.py` holds every verb that needs only the library (the stage verbs of
`girml/cli_stages.py`, the tools of `girml/cli_tools.py`; `girml/cli_convert.py` and
`girml/cli_export.py` two more); the verbs that drive Prefect, DVC or a local service stack are
added here, so the library never imports them. Each module below registers its verbs and imports
its heavy dependencies inside the command bodies.
"""

from girml import cli_convert, cli_export
from girml.cli import app
from pipelines import deploy, pull, remote, stack

for _module in (cli_convert, cli_export, deploy, stack, pull, remote):
    _module.register(app)

__all__ = ["app"]
