"""Masking secrets in what the flow logs and publishes: URL userinfo and signatures, and the
values of secret-looking environment variables. Nothing secret leaves the machine through the
flow: every logged line, error message and artifact goes through :func:`redact`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from girml.core.urls import mask_text

MASK = "***"
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|_KEY$", re.I)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask URL userinfo and the values of secret-looking environment variables in ``text``.

    Args:
        text: any text about to be logged or published.
        environ: the environment whose secrets to mask; ``os.environ`` when None. A variable
            counts as secret when its name contains SECRET, TOKEN, PASSWORD, CREDENTIAL,
            PRIVATE or API_KEY, or ends in ``_KEY``; values shorter than 6 characters are
            left alone (masking them would mangle ordinary words).

    Returns:
        ``text`` with every secret value replaced by ``***`` and every URL masked by
        :func:`girml.core.urls.mask_text` (``scheme://user:pass@`` -> ``scheme://***@``, secret
        query values such as ``X-Amz-Signature`` -> ``***``).
    """
    env = os.environ if environ is None else environ
    secrets = sorted(
        (v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 6), key=len, reverse=True
    )
    for value in secrets:
        text = text.replace(value, MASK)
    return mask_text(text)
