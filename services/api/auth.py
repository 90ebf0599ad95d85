"""Bearer-token check for the write endpoints.

The token is the value of the environment variable ``sinks.api_token_env`` names (never the config file).
When that variable is unset or empty the API still serves reads, but every write is refused with 503:
an unconfigured token must never mean "open". Missing or non-Bearer credentials get 401, a wrong token
403. The comparison is constant-time.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The value of the environment variable named by `sinks.api_token_env` (default DRAIZER_API_TOKEN).",
)


class TokenCheck:
    def __init__(self, token: str, env_var: str) -> None:
        self._token = token.encode()
        self.env_var = env_var

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def __call__(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
        who = request.client.host if request.client else "?"
        if not self._token:
            raise HTTPException(503, f"write endpoints are disabled: {self.env_var or 'no token variable'} is not set")
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.credentials.encode(), self._token):
            log.warning("refused %s %s from %s: wrong token", request.method, request.url.path, who)
            raise HTTPException(403, "wrong token")
