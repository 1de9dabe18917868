"""Vouch spam checker for Synapse: every uploaded media file is sent to Vouch before Synapse keeps
it. Vouch answers 2xx to keep it and 406 to refuse it (known abuse, or - where the Vouch policy
says fail-closed - media nobody could judge in time). Files that are not images (documents, voice
notes, anything from an encrypted room) are kept: they are not Vouch's to judge. Only the bytes go
to Vouch; nothing about the uploader does.

homeserver.yaml:

    modules:
      - module: vouch_synapse.VouchSpamChecker
        config:
          url: http://127.0.0.1:8080   # Vouch, on a private address
          token: "..."                 # Vouch's VOUCH_VALIDATE_TOKEN, if it has one
          fail_closed: false           # what to do when Vouch cannot be reached
          max_bytes: 52428800          # larger files are not sent (and kept or refused per fail_closed)
"""

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional
from urllib.parse import urlparse

from twisted.web.client import readBody
from twisted.web.http_headers import Headers

from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.module_api.errors import Codes, ConfigError

logger = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class VouchConfig:
    url: str
    token: Optional[str]
    fail_closed: bool
    max_bytes: int


class VouchSpamChecker:
    def __init__(self, config: VouchConfig, api: ModuleApi):
        self._config = config
        self._api = api
        api.register_spam_checker_callbacks(check_media_file_for_spam=self.check_media_file_for_spam)

    @staticmethod
    def parse_config(config: Dict[str, Any]) -> VouchConfig:
        url = config.get("url")
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            raise ConfigError("vouch_synapse: 'url' must be Vouch's base URL, e.g. http://127.0.0.1:8080")
        fail_closed = config.get("fail_closed", False)
        if not isinstance(fail_closed, bool):
            raise ConfigError("vouch_synapse: 'fail_closed' must be true or false")
        max_bytes = config.get("max_bytes", 50 * 1024 * 1024)
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigError("vouch_synapse: 'max_bytes' must be a positive integer")
        token = config.get("token")
        if token is not None and (not isinstance(token, str) or len(token) < 32):
            raise ConfigError("vouch_synapse: 'token' must be Vouch's VOUCH_VALIDATE_TOKEN (32 characters or more)")
        return VouchConfig(url=url.rstrip("/"), token=token, fail_closed=fail_closed, max_bytes=max_bytes)

    def _unavailable(self, why: str, file_info: Any):
        logger.warning("Vouch could not judge media %s (%s): %s", getattr(file_info, "file_id", "?"), why,
                       "refusing it" if self._config.fail_closed else "keeping it")
        return Codes.FORBIDDEN if self._config.fail_closed else NOT_SPAM

    async def check_media_file_for_spam(self, file_wrapper: Any, file_info: Any):
        chunks: List[bytes] = []
        size = 0

        def collect(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > self._config.max_bytes:
                raise _TooLarge()
            chunks.append(chunk)

        try:
            await file_wrapper.write_chunks_to(collect)
        except _TooLarge:
            return self._unavailable(f"larger than max_bytes ({self._config.max_bytes})", file_info)

        headers = {"Content-Type": ["application/octet-stream"]}
        if self._config.token:
            headers["Authorization"] = [f"Bearer {self._config.token}"]
        try:
            response = await self._api.http_client.request(
                "POST",
                f"{self._config.url}/api/v1/validate?source=synapse",
                data=b"".join(chunks),
                headers=Headers(headers),
            )
            await readBody(response)
        except Exception as e:  # network errors, timeouts: the fail mode decides
            return self._unavailable(f"{type(e).__name__}: {e}", file_info)

        if response.code == 406:
            logger.info("Vouch refused media %s", getattr(file_info, "file_id", "?"))
            return Codes.FORBIDDEN
        if 200 <= response.code < 300:
            return NOT_SPAM
        return self._unavailable(f"Vouch answered {response.code}", file_info)
