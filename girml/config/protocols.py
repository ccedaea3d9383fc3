"""The ``protocols`` section: the field's test sets and the named protocols scored on them.

A **test set** (``protocols.sets.<name>``) is a public data set in its usual layout (Rain100L,
SOTS-outdoor, CBSD68 ...; ``girml/data/testsets.py`` knows each one's folders and file names), or
a folder of your own (``layout: clean`` photos to degrade, ``pairs`` in ``input/`` + ``target/``,
``real`` photos without ground truth). Each comes through a collect source: ``urls`` (pinned by
sha256 at the first download), ``folder`` or ``s3``. DVC stage ``testset@<name>`` fetches it into
``data/protocols/<name>/``.

A **protocol** names its rows (a set and how its inputs are made: the set's given pairs, Gaussian
noise drawn with a fixed seed, or ``degradations`` at in-distribution and harder levels) and its
metric convention (a key of ``girml.metrics.conventions.CONVENTIONS``). The built-in ones are
:data:`BUILTIN_PROTOCOLS`; ``protocols.custom`` adds your own. DVC stage ``protocols@<name>``
scores the model, the degraded input and ``evaluate.methods`` on each protocol of
``protocols.run`` (empty in the quick profile, which has no network).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from girml.config.base import Frozen
from girml.config.collect import FolderSource, S3Source, UrlSource

# The test sets girml knows by name, with the layout each is read in (girml/data/testsets.py).
KNOWN_SETS = (
    "cbsd68",
    "kodak24",
    "mcmaster",
    "urban100",
    "rain100l",
    "sots-outdoor",
    "gopro",
    "lol-v1",
    "real-photos",
)
# Layouts for a set of your own: photos to degrade, input/target pairs, photos without GT.
GENERIC_LAYOUTS = ("clean", "pairs", "real")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")

SetSource = Annotated[FolderSource | S3Source | UrlSource, Field(discriminator="type")]


class TestSetConfig(Frozen):
    """Where one test set's files are (``protocols.sets.<name>``).

    ``source``: a ``urls``, ``folder`` or ``s3`` source as in ``collect.sources``, holding the set
    in its usual layout (anywhere inside: an archive's top folder is found). ``layout``: for a
    set girml does not know by name, how to read it (``clean``, ``pairs`` or ``real``).
    """

    __test__ = False  # not a pytest test class, whatever its name

    source: SetSource
    layout: Literal["clean", "pairs", "real"] | None = None


class ProtocolTask(Frozen):
    """One row of a protocol: a test set and how its inputs are made.

    ``input``: ``given`` (the set's degraded images, or the photos alone for a ``real`` set),
    ``gaussian`` (additive Gaussian noise of ``sigma`` on the 0-255 scale, drawn from the
    protocol's one seeded stream, as AirNet's test.py does) or ``degradations`` (every family of
    ``params.yaml: degradations`` at each of the protocol's ``levels``, plus a ``clean`` row).
    ``name``: the row's name in the results (default: the set's, ``-s<sigma>`` added for noise).
    ``convention``: this row's metric convention, where it differs from the protocol's.
    ``optional``: the row is left out (and listed as skipped) when the set was not fetched.
    """

    set: str
    input: Literal["given", "gaussian", "degradations"] = "given"
    sigma: float | None = Field(default=None, gt=0, le=255)
    name: str | None = None
    convention: str | None = None
    optional: bool = False

    @model_validator(mode="after")
    def _sigma_with_gaussian(self) -> ProtocolTask:
        if (self.input == "gaussian") != (self.sigma is not None):
            raise ValueError("sigma is required with input: gaussian, and only with it")
        return self

    @property
    def row(self) -> str:
        """The row's name: ``name``, else ``<set>`` (``<set>-s<sigma>`` for Gaussian noise)."""
        if self.name:
            return self.name
        return f"{self.set}-s{self.sigma:g}" if self.sigma is not None else self.set


class ProtocolSpec(Frozen):
    """A protocol: its rows, its metric convention and how inputs are drawn.

    ``convention`` also says how images are cut first: each input and target is centre-cropped
    to the convention's ``input_multiple`` (AirNet's ``crop_img(base=16)``). ``noise_seed``: the
    seed of the one legacy ``np.random`` stream that every ``gaussian`` row draws from, rows in
    order and images in name order (AirNet's ``np.random.seed(0)``).
    ``seed`` and ``levels``: ``degradations`` rows draw each image's recipe from a generator
    keyed by (seed, set, family, level, image), at these levels.
    """

    tasks: list[ProtocolTask] = Field(min_length=1)
    convention: str = Field(description="a key of girml.metrics.conventions.CONVENTIONS")
    noise_seed: int = Field(default=0, ge=0)
    seed: int = 0
    levels: list[Literal["id", "ood"]] = Field(default=["id", "ood"], min_length=1)

    @model_validator(mode="after")
    def _unique_rows(self) -> ProtocolSpec:
        rows = [task.row for task in self.tasks]
        twice = sorted({row for row in rows if rows.count(row) > 1})
        if twice:
            raise ValueError(f"row name(s) {twice} given twice: name the rows apart")
        return self


def _gaussian(set_name: str, sigma: float) -> ProtocolTask:
    return ProtocolTask(set=set_name, input="gaussian", sigma=sigma)


# AirNet (Li et al., CVPR 2022) defined the 3-task all-in-one setting that PromptIR, AdaIR and
# the rest report on: CBSD68 noise 15/25/50, Rain100L, SOTS-outdoor. Its test.py seeds numpy
# once (XLearning-SCU/2022-CVPR-AirNet@bedea82 test.py:L78 np.random.seed(0)) and noises CBSD68
# at 15, then 25, then 50 from that one stream (L118-126, mode 3), each image first cropped to a
# multiple of 16 (utils/dataset_utils.py:L194 crop_img(base=16)), then L186-187
# np.clip(clean + np.random.randn(*shape) * sigma, 0, 255).astype(np.uint8) (truncation).
# The images are taken in os.listdir order there; here in name order, so runs agree.
# IDR (Zhang et al., CVPR 2023) defined the 5-task setting (CBSD68 25, Rain100L, SOTS-outdoor,
# GoPro, LOL-v1) and scores it with AirNet's metric code (girml.metrics.conventions, "airnet");
# InstructIR reports on it too.
BUILTIN_PROTOCOLS: dict[str, ProtocolSpec] = {
    "allinone-3": ProtocolSpec(
        tasks=[
            _gaussian("cbsd68", 15),
            _gaussian("cbsd68", 25),
            _gaussian("cbsd68", 50),
            ProtocolTask(set="rain100l"),
            ProtocolTask(set="sots-outdoor"),
        ],
        convention="airnet",
    ),
    "allinone-5": ProtocolSpec(
        tasks=[
            _gaussian("cbsd68", 25),
            ProtocolTask(set="rain100l"),
            ProtocolTask(set="sots-outdoor"),
            ProtocolTask(set="gopro"),
            ProtocolTask(set="lol-v1"),
        ],
        convention="airnet",
    ),
    "gir-clean": ProtocolSpec(
        tasks=[
            ProtocolTask(set=name, input="degradations")
            for name in ("kodak24", "mcmaster", "urban100")
        ],
        convention="gir",
    ),
    "real": ProtocolSpec(
        tasks=[ProtocolTask(set="lol-v1"), ProtocolTask(set="real-photos", optional=True)],
        convention="gir",
    ),
}


class ProtocolsConfig(Frozen):
    """The ``protocols`` section (docs/protocols.md).

    ``run``: the protocols scored, one DVC stage ``protocols@<name>`` each (none in the quick
    profile). ``sets``: name -> :class:`TestSetConfig`, one DVC stage ``testset@<name>`` each.
    ``custom``: protocols of your own, beside :data:`BUILTIN_PROTOCOLS`.
    """

    run: list[str] = Field(default_factory=list)
    sets: dict[str, TestSetConfig] = Field(default_factory=dict)
    custom: dict[str, ProtocolSpec] = Field(default_factory=dict)

    @field_validator("sets")
    @classmethod
    def _set_names(cls, value: dict[str, TestSetConfig]) -> dict[str, TestSetConfig]:
        for name, spec in value.items():
            if not _NAME.fullmatch(name):
                raise ValueError(
                    f"set name {name!r} must be lower case letters, digits, '.', '_' and '-' "
                    "(it names a DVC stage and a folder)"
                )
            if name not in KNOWN_SETS and spec.layout is None:
                raise ValueError(
                    f"set {name!r} is no set girml knows ({', '.join(KNOWN_SETS)}): give its "
                    f"layout ({' | '.join(GENERIC_LAYOUTS)})"
                )
        return value

    @model_validator(mode="after")
    def _protocol_names(self) -> ProtocolsConfig:
        for name in self.custom:
            if not _NAME.fullmatch(name):
                raise ValueError(
                    f"protocol name {name!r} must be lower case letters, digits, '.', '_', '-'"
                )
            if name in BUILTIN_PROTOCOLS:
                raise ValueError(f"protocol name {name!r} is built in: name yours apart")
        known = sorted({*BUILTIN_PROTOCOLS, *self.custom})
        unknown = [name for name in self.run if name not in known]
        if unknown:
            raise ValueError(f"run names unknown protocol(s) {unknown}; known: {known}")
        if len(set(self.run)) != len(self.run):
            raise ValueError(f"run lists a protocol twice: {self.run}")
        for name, spec in self.custom.items():
            strays = [
                task.set
                for task in spec.tasks
                if task.set not in KNOWN_SETS and task.set not in self.sets
            ]
            if strays:
                raise ValueError(
                    f"protocol {name!r} uses set(s) {strays}, which are neither known sets nor "
                    "listed in sets"
                )
        return self

    def protocol(self, name: str) -> ProtocolSpec:
        """The protocol ``name``: one of ``custom``, else a built-in one.

        Raises:
            KeyError: no such protocol (the message lists those that exist).
        """
        found = self.custom.get(name) or BUILTIN_PROTOCOLS.get(name)
        if found is None:
            known = sorted({*BUILTIN_PROTOCOLS, *self.custom})
            raise KeyError(f"no protocol {name!r}; known: {known}")
        return found
