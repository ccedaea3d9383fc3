"""The ``collect`` section: where clean images come from and how they are split."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from girml.config.base import Frozen
from girml.core.urls import url_credentials


class BuiltinSource(Frozen):
    """Real photos shipped by installed packages (scikit-image, scikit-learn); no network."""

    type: Literal["builtin"]
    include: list[str] | None = Field(
        default=None, description="names from the builtin table; all when omitted"
    )


class FolderSource(Frozen):
    """A user directory, searched recursively for image files."""

    type: Literal["folder"]
    path: str
    category_from: Literal["folder", "label_file", "fixed"] = "folder"
    category: str = "unknown"
    label_file: str | None = Field(
        default=None, description="CSV with columns path,category (path relative to `path`)"
    )

    @model_validator(mode="after")
    def _label_file_given(self) -> FolderSource:
        if self.category_from == "label_file" and not self.label_file:
            raise ValueError("label_file is required when category_from is 'label_file'")
        return self


class S3Source(Frozen):
    """Objects under ``s3://bucket/prefix``; the endpoint comes from ``AWS_ENDPOINT_URL``."""

    type: Literal["s3"]
    bucket: str = Field(min_length=3)
    prefix: str = ""
    category_from: Literal["folder", "fixed"] = "folder"
    category: str = "unknown"


class UrlItem(Frozen):
    """One download; the URL carries no credentials (params and dvc.lock are committed).

    ``sha256`` pins the content; left out, the first download's hash is recorded in the
    source's ``pin_file`` and every later download is verified against it.
    """

    url: str = Field(pattern=r"^(https?|file)://")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    category: str = "unknown"

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        found = url_credentials(url)
        if found:
            raise ValueError(
                f"credentials in the URL ({', '.join(found)}) are refused: params.yaml and "
                "dvc.lock are committed and pushed. Give the bare URL and put the login in "
                "~/.netrc ('machine HOST login USER password PASSWORD', or the file named by "
                "$NETRC); for S3 use a type: s3 source with AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY or an AWS profile"
            )
        return url


class UrlSource(Frozen):
    """HTTP(S) image files or zip/tar archives, verified by sha256, downloaded with resume."""

    type: Literal["urls"]
    items: list[UrlItem] = Field(min_length=1)
    cache_dir: str = ".cache/downloads"
    # "<sha256>  <url>" lines (sha256sum's format) for items without a sha256: recorded at
    # the first download, verified after; commit it with params.yaml
    pin_file: str = "downloads.sha256"
    retries: int = Field(default=5, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)


class SplitFractions(Frozen):
    val: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_below_one(self) -> SplitFractions:
        if self.val + self.test >= 1:
            raise ValueError(f"val + test must be < 1, got {self.val + self.test}")
        return self


class PackageSource(Frozen):
    """Images shipped by Debian/Ubuntu packages, every one pinned by sha256 in ``pin_file``.

    Read from the installed files under ``root`` when the package is installed; otherwise
    ``apt-get download`` fetches the package into ``cache_dir`` and its pinned files are
    extracted there. Large images are reduced by an integer box factor to ``max_side``.
    """

    type: Literal["packages"]
    packages: list[str] | None = Field(
        default=None, description="packages to read; all the pin file lists when omitted"
    )
    categories: list[str] | None = Field(
        default=None,
        description="pin-file categories to keep (photo, illustration); all when omitted",
    )
    pin_file: str = Field(
        default="girml/data/package_photos.csv",
        description="committed CSV: package,path,sha256,category,author,license",
    )
    root: str = "/"
    cache_dir: str = ".cache/packages"
    max_side: int | None = Field(
        default=1600, ge=96, description="longer side after an integer box reduction; None: as is"
    )
    split: SplitFractions | None = Field(
        default=None, description="this source's own val/test fractions (collect.split otherwise)"
    )


Source = Annotated[
    BuiltinSource | FolderSource | S3Source | UrlSource | PackageSource,
    Field(discriminator="type"),
]


class CollectConfig(Frozen):
    sources: list[Source] = Field(min_length=1)
    min_size: int = Field(default=96, gt=0, description="shorter side, pixels")
    max_pixels: int = Field(default=100_000_000, gt=0)
    max_file_bytes: int = Field(
        default=1_000_000_000,
        gt=0,
        description="largest image file read, bytes; larger files are rejected from their size "
        "on disk (or S3 listing) before a byte is read",
    )
    max_member_bytes: int = Field(
        default=200_000_000,
        gt=0,
        description="largest decompressed archive member read, bytes; larger image members "
        "are rejected by name, the rest of the archive is still collected",
    )
    split: SplitFractions = SplitFractions()
