"""One exception tree for the project: callers catch ``DraizerError`` or a precise subclass."""


class DraizerError(Exception):
    """Root of every error draizer raises on purpose."""


class ConfigError(DraizerError):
    """The configuration is invalid; the message names the offending key."""


class ProtocolError(DraizerError):
    """A peer sent something that does not follow its wire format."""


class VenueError(DraizerError):
    """A venue answered with an error (its own code and message are kept)."""

    def __init__(self, code: int, msg: str, http_status: int = 0) -> None:
        super().__init__(f"venue error {code}: {msg} (HTTP {http_status})")
        self.code = code
        self.msg = msg
        self.http_status = http_status
