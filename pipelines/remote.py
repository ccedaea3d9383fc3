"""``girml remote s3``: put the project's DVC remote on S3 (AWS, MinIO or any S3-compatible
endpoint).

The verb is a thin wrapper over ``dvc remote add`` and ``dvc remote modify <name> endpointurl``;
docs/operations.md shows the raw commands too. Credentials are never written: DVC's S3 remote reads
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or a profile) from the environment and the
usual AWS files, so an endpoint URL carrying ``user:password@`` is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from girml.core.urls import mask_text, mask_url, url_credentials
from pipelines.dvc_run import DvcError, run_dvc

# Bucket naming rules (AWS): 3-63 characters, lower-case letters, digits, dots and hyphens,
# starting and ending with a letter or digit. MinIO follows the same rules.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def s3_url(target: str) -> str:
    """Turn ``BUCKET[/PREFIX]`` (or ``s3://BUCKET[/PREFIX]``) into ``s3://bucket/prefix``.

    Raises:
        ValueError: the bucket name breaks the S3 naming rules or the prefix has ``..`` or
            empty parts; the message names the bad value.
    """
    rest = target.removeprefix("s3://").strip("/")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"bucket must be 3-63 lower-case letters, digits, dots or hyphens, got {bucket!r}"
        )
    parts = prefix.split("/") if prefix else []
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"prefix must be a plain key path, got {prefix!r}")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def check_endpoint_url(url: str) -> str:
    """Validate an S3 endpoint URL (``http(s)://host[:port][/path]``, no credentials in it).

    Raises:
        ValueError: wrong scheme, no host, or ``user:password@`` in the URL (credentials belong
            in the environment or the AWS files, never in ``.dvc/config``).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint URL must be http(s)://host[:port], got {mask_url(url)!r}")
    found = url_credentials(url)
    if found:
        raise ValueError(
            f"endpoint URL must not carry credentials ({', '.join(found)}), got "
            f"{mask_url(url)!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
            "environment or use an AWS profile"
        )
    return url.rstrip("/")


def add_s3_remote(
    target: str,
    cwd: Path,
    endpoint_url: str | None = None,
    name: str = "s3",
    default: bool = False,
    force: bool = False,
    local: bool = False,
) -> str:
    """Configure DVC remote ``name`` at ``s3://bucket/prefix`` in the DVC project at ``cwd``.

    Runs ``dvc remote add [--default] [--force] NAME URL`` and, with an endpoint,
    ``dvc remote modify NAME endpointurl ENDPOINT``. Nothing about credentials is written.

    Args:
        target: ``BUCKET[/PREFIX]`` or ``s3://BUCKET[/PREFIX]``.
        cwd: a folder inside the DVC project.
        endpoint_url: an S3-compatible endpoint (MinIO, a test server); None for AWS.
        name: the remote's name.
        default: make it the project's default remote (``dvc push`` / ``dvc pull`` use it).
        force: replace an existing remote of that name.
        local: write to ``.dvc/config.local`` (not committed) instead of ``.dvc/config``.

    Returns:
        The remote's ``s3://`` URL.

    Raises:
        ValueError: a bad target, endpoint or name (checked before DVC runs).
        DvcError: DVC refused (not a DVC project, the remote exists without ``force``).
    """
    url = s3_url(target)
    endpoint = check_endpoint_url(endpoint_url) if endpoint_url is not None else None
    if not _REMOTE_NAME.match(name):
        raise ValueError(f"remote name must be letters, digits, '_', '.' or '-', got {name!r}")
    level = ["--local"] if local else []
    flags = [*level, *(["--default"] if default else []), *(["--force"] if force else [])]
    run_dvc(["remote", "add", *flags, name, url], cwd)
    if endpoint is not None:
        run_dvc(["remote", "modify", *level, name, "endpointurl", endpoint], cwd)
    return url


def register(app: typer.Typer) -> None:
    """Add the ``girml remote`` group (``girml remote s3``) to ``app``."""
    remote_app = typer.Typer(
        name="remote", help="Configure the project's DVC remote storage.", no_args_is_help=True
    )

    @remote_app.command("s3")
    def s3(
        target: Annotated[str, typer.Argument(help="BUCKET or BUCKET/PREFIX, e.g. girml-data/dvc")],
        endpoint_url: Annotated[
            str | None,
            typer.Option(help="S3-compatible endpoint (MinIO, a test server); omit for AWS"),
        ] = None,
        name: Annotated[str, typer.Option(help="remote name")] = "s3",
        default: Annotated[bool, typer.Option("--default", help="make it the default")] = False,
        force: Annotated[bool, typer.Option("--force", help="replace a remote of that name")] = (
            False
        ),
        local: Annotated[
            bool, typer.Option("--local", help="write .dvc/config.local (not committed)")
        ] = False,
    ) -> None:
        """Point a DVC remote at S3; credentials stay in the environment or ~/.aws."""
        try:
            url = add_s3_remote(target, Path.cwd(), endpoint_url, name, default, force, local)
        except (ValueError, DvcError) as exc:
            typer.secho(f"error: {mask_text(str(exc))}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        where = f" via {endpoint_url}" if endpoint_url else ""
        typer.echo(f"DVC remote {name!r} -> {url}{where}{' (default)' if default else ''}")
        typer.echo(
            "credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile "
            "(never written to .dvc/config)"
        )

    app.add_typer(remote_app)
