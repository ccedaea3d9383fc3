"""girml.core.urls: masking credentials in URLs and text, and naming the ones a URL carries.

The broad catalogue of secret-bearing URLs and the end-to-end checks (CLI output, logs, MLflow,
S3 endpoints) are in ``tests/e2e/test_secrets.py``; these are the helpers' own edge cases.
"""

from __future__ import annotations

import logging

from girml.core.urls import (
    MASK,
    MaskingFilter,
    mask_text,
    mask_url,
    text_credentials,
    url_credentials,
)


def test_each_secret_parameter_is_named_once_and_empty_values_are_not_secrets() -> None:
    url = "https://u:p@h/x?sig=a&page=2&api-key=b&token=#id_token=c"
    assert url_credentials(url) == [
        "user:password@",
        "query parameter 'sig'",
        "query parameter 'api-key'",
        "fragment parameter 'id_token'",
    ]
    assert (
        mask_url(url)
        == f"https://{MASK}@h/x?sig={MASK}&page=2&api-key={MASK}&token=#id_token={MASK}"
    )


def test_percent_encoded_parameter_names_are_recognised() -> None:
    url = "https://b.s3.example.org/k?X%2DAmz%2DSignature=abc&X-Amz-Date=1"
    assert url_credentials(url) == ["query parameter 'X-Amz-Signature'"]
    assert mask_url(url) == f"https://b.s3.example.org/k?X%2DAmz%2DSignature={MASK}&X-Amz-Date=1"


def test_text_credentials_find_urls_inside_overrides() -> None:
    override = "collect.sources.0.url=https://alice:pw@example.org/a.zip"
    assert text_credentials(override) == ["user:password@"]
    assert text_credentials("train.steps=10") == []
    assert mask_text(override) == f"collect.sources.0.url=https://{MASK}@example.org/a.zip"


def test_masking_filter_formats_args_before_masking() -> None:
    record = logging.LogRecord(
        "girml", logging.INFO, __file__, 1, "GET %s -> %d", ("https://h/x?token=abc", 200), None
    )
    assert MaskingFilter().filter(record) is True
    assert record.getMessage() == f"GET https://h/x?token={MASK} -> 200"
    assert record.args is None
    clean = logging.LogRecord("girml", logging.INFO, __file__, 1, "%d files", (3,), None)
    MaskingFilter().filter(clean)
    assert clean.args == (3,) and clean.getMessage() == "3 files"  # untouched when nothing to mask


def test_masking_a_masked_line_again_keeps_the_punctuation_after_the_mask() -> None:
    """A log filter may mask a message whose URL was masked already: the ")" or ";" after the
    mask stays, and nothing is unmasked."""
    line = f"failed (ConnectionError: GET {mask_text('https://h/x?token=abc')}); retrying"
    assert line == "failed (ConnectionError: GET https://h/x?token=***); retrying"
    assert mask_text(line) == line
    assert mask_text("GET https://h/x?token=***abc") == "GET https://h/x?token=***"
