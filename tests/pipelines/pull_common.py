"""What the ``girml pull`` tests share: distinctive fake credentials (searched for in every
output and stored byte), and the command line."""

from __future__ import annotations

from typer.testing import CliRunner

KEY_ID = "GIRMLTESTKEYID7C1F0E9A"
SECRET = "girml-test-SECRET-7c1f0e9a-do-not-log"
runner = CliRunner()
