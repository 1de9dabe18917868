"""Runs the Vouch Synapse module outside Synapse, which cannot be installed here: stand-ins for
the few synapse.* names the module imports (a mock, by necessity), and real Twisted doing the
real HTTP to a real Vouch server. Prints one JSON object: file name -> what the module answered.

usage: synapse_harness.py CONFIG_JSON FILE...
"""

import json
import os
import sys
import types
from enum import Enum

from twisted.internet import defer, task
from twisted.web.client import Agent


def install_synapse_stand_ins() -> None:
    synapse = types.ModuleType("synapse")
    module_api = types.ModuleType("synapse.module_api")
    errors = types.ModuleType("synapse.module_api.errors")

    class Codes(str, Enum):  # as in synapse.api.errors
        FORBIDDEN = "M_FORBIDDEN"

    class ConfigError(Exception):
        pass

    module_api.NOT_SPAM = "NOT_SPAM"
    module_api.ModuleApi = object
    errors.Codes = Codes
    errors.ConfigError = ConfigError
    sys.modules.update({"synapse": synapse, "synapse.module_api": module_api, "synapse.module_api.errors": errors})


class HttpClient:
    """The one method of Synapse's SimpleHttpClient the module uses, on a real Twisted Agent."""

    def __init__(self, reactor):
        self._agent = Agent(reactor)

    async def request(self, method, uri, data=None, headers=None):
        from twisted.web.client import FileBodyProducer
        from io import BytesIO

        body = FileBodyProducer(BytesIO(data)) if data is not None else None
        return await self._agent.request(method.encode(), uri.encode(), headers, body)


class Api:
    def __init__(self, reactor):
        self.http_client = HttpClient(reactor)
        self.callbacks = {}

    def register_spam_checker_callbacks(self, **callbacks):
        self.callbacks.update(callbacks)


class FileWrapper:
    """Like synapse.media.media_storage.ReadableFileWrapper: hands the file over in chunks."""

    def __init__(self, path):
        self.path = path

    async def write_chunks_to(self, callback):
        with open(self.path, "rb") as f:
            while chunk := f.read(65536):
                callback(chunk)


class FileInfo:
    def __init__(self, file_id):
        self.file_id = file_id


async def main(reactor, config_json, *paths):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integrations", "synapse"))
    install_synapse_stand_ins()
    import vouch_synapse

    results = {}
    try:
        config = vouch_synapse.VouchSpamChecker.parse_config(json.loads(config_json))
    except Exception as e:
        print(json.dumps({"config_error": str(e)}))
        return
    api = Api(reactor)
    vouch_synapse.VouchSpamChecker(config, api)
    check = api.callbacks["check_media_file_for_spam"]
    for path in paths:
        answer = await check(FileWrapper(path), FileInfo(os.path.basename(path)))
        results[os.path.basename(path)] = answer.value if isinstance(answer, Enum) else answer
    print(json.dumps(results))


if __name__ == "__main__":
    task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
