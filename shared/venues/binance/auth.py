"""Binance request signing: HMAC-SHA256 over query string + body, lowercase hex, ``signature=`` last."""

from __future__ import annotations

from collections.abc import Sequence

from shared.venues.binance.constants import API_KEY_HEADER
from shared.venues.common import HttpRequest, hmac_sha256_hex, signed_path


def sign(secret: str, query: str, body: str = "") -> str:
    return hmac_sha256_hex(secret, query + body)


def signed_request(
    method: str, path: str, params: Sequence[tuple[str, str]], api_key: str, api_secret: str
) -> HttpRequest:
    """Parameters in the query string, empty body: the signature covers the query string alone."""
    return HttpRequest(method, signed_path(path, params, api_secret), [(API_KEY_HEADER, api_key)], b"")
