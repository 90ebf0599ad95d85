"""Bearer-token check for the write endpoints.

The token is the value of the environment variable ``sinks.api_token_env`` names (never the config file).
When that variable is unset or empty the API still serves reads, but every write is refused with 503:
an unconfigured token must never mean "open". Missing or non-Bearer credentials get 401, a wrong token
403. The comparison is constant-time.

Every refusal is logged once, as a warning naming the method, the path, the client address and why (never
the token, neither the expected one nor the one offered), and counted in ``TokenCheck.refused``.
"""

from __future__ import annotations

import hmac
import logging
from typing import NoReturn

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The value of the environment variable named by `sinks.api_token_env` (default DRAIZER_API_TOKEN).",
)


def client_address(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "?"


class TokenCheck:
    def __init__(self, token: str, env_var: str) -> None:
        self._token = token.encode()
        self.env_var = env_var
        self.refused: dict[int, int] = {}  # HTTP status -> writes refused with it, since the start

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def __call__(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
        if not self._token:
            unset = self.env_var or "no token variable"
            self._refuse(request, 503, f"write endpoints are disabled: {unset} is not set")
        if credentials is None:
            self._refuse(request, 401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.credentials.encode(), self._token):
            self._refuse(request, 403, "wrong token")

    def _refuse(self, request: Request, status: int, why: str, headers: dict[str, str] | None = None) -> NoReturn:
        """Log and count one refused write, then refuse it. ``why`` never holds a token."""
        self.refused[status] = self.refused.get(status, 0) + 1
        log.warning(
            "refused %s %s from %s: %d %s (%d writes refused since the start)",
            request.method, request.url.path, client_address(request), status, why, sum(self.refused.values()),
        )
        raise HTTPException(status, why, headers=headers)
