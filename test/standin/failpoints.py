"""configureFailPoint with the failCommand fail point, as mongod offers it
under enableTestCommands.

Rules of this file:
- Only failCommand exists; configuring any other fail point is an error,
  never a silent success.
- Modes: "alwaysOn", "off", {times: n}, {skip: n}, {activationProbability: p}.
  Only commands named in data.failCommands (and from data.appName when
  given) count toward times/skip, as in mongod.
- check() is called for every command before it runs and returns the data
  document of a triggered fail point (closeConnection, blockConnection +
  blockTimeMS, errorCode + errorLabels, writeConcernError), or None.
"""

import random
import threading

from .errors import CommandError, BAD_VALUE, TYPE_MISMATCH, FAILED_TO_PARSE

KNOWN = {"failCommand"}


class FailPoints:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode = None          # None = off
        self.remaining = 0        # for times
        self.skip = 0
        self.probability = 1.0
        self.data = {}
        self.entered = 0

    def configure(self, body):
        name = body.get("configureFailPoint")
        if name not in KNOWN:
            raise CommandError(*BAD_VALUE,
                               "Cannot find failpoint: %s (the stand-in implements "
                               "only failCommand)" % name)
        mode = body.get("mode")
        data = body.get("data", {})
        if not isinstance(data, dict):
            raise CommandError(*TYPE_MISMATCH, "the 'data' option must be an object")
        with self.lock:
            before = self.entered
            if mode == "off":
                self.mode = None
            elif mode == "alwaysOn":
                self.mode = "alwaysOn"
            elif isinstance(mode, dict) and len(mode) == 1:
                (k, v), = mode.items()
                if k == "times":
                    self.mode = "times"
                    self.remaining = _count(v)
                    if self.remaining == 0:
                        self.mode = None
                elif k == "skip":
                    self.mode = "skip"
                    self.skip = _count(v)
                elif k == "activationProbability":
                    if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                        raise CommandError(*BAD_VALUE, "activationProbability must be "
                                           "a number between 0 and 1")
                    self.mode = "random"
                    self.probability = float(v)
                else:
                    raise CommandError(*BAD_VALUE, "unknown fail point mode: %s" % k)
            else:
                raise CommandError(*BAD_VALUE if mode is not None else FAILED_TO_PARSE,
                                   "'mode' must be off, alwaysOn or one of {times: n}, "
                                   "{skip: n}, {activationProbability: p}")
            if self.mode is not None:
                fc = data.get("failCommands")
                if not isinstance(fc, list) or not all(isinstance(x, str) for x in fc):
                    self.mode = None
                    raise CommandError(*BAD_VALUE, "failCommand requires data.failCommands, "
                                       "an array of command names")
                if data.get("blockConnection") and not isinstance(
                        data.get("blockTimeMS"), (int, float)):
                    self.mode = None
                    raise CommandError(*BAD_VALUE, "blockConnection requires blockTimeMS")
                self.data = dict(data)
            else:
                self.data = {}
            self.entered = 0
        return {"count": before, "ok": 1.0}

    def check(self, command, conn):
        if self.mode is None:
            return None
        with self.lock:
            data = self.data
            if self.mode is None or command not in data.get("failCommands", ()):
                return None
            if command == "configureFailPoint":
                return None
            app = data.get("appName")
            if app is not None and app != getattr(conn, "app_name", None):
                return None
            if self.mode == "times":
                self.remaining -= 1
                if self.remaining <= 0:
                    self.mode = None
            elif self.mode == "skip":
                if self.skip > 0:
                    self.skip -= 1
                    return None
            elif self.mode == "random":
                if random.random() >= self.probability:
                    return None
            self.entered += 1
            return data


def _count(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise CommandError(*BAD_VALUE, "fail point mode count must be a non-negative "
                           "integer")
    return int(v)
