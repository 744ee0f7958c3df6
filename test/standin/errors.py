"""Errors the stand-in answers with, in MongoDB's own shape.

A command handler raises CommandError; the dispatcher turns it into
{ok: 0, errmsg, code, codeName, errorLabels?, ...extra}.  Codes and names
follow MongoDB's error_codes.yml so drivers classify them as they would
for a real server (resumable, retryable, ...).
"""


class CommandError(Exception):
    """A command failed with a MongoDB error code."""

    def __init__(self, code, code_name, errmsg, labels=(), extra=None):
        super().__init__(errmsg)
        self.code = int(code)
        self.code_name = code_name
        self.errmsg = errmsg
        self.labels = list(labels)
        self.extra = dict(extra or {})

    def to_reply(self):
        reply = {"ok": 0.0, "errmsg": self.errmsg, "code": self.code,
                 "codeName": self.code_name}
        if self.labels:
            reply["errorLabels"] = list(self.labels)
        reply.update(self.extra)
        return reply


# The codes the stand-in uses, named as MongoDB names them.
BAD_VALUE = (2, "BadValue")
FAILED_TO_PARSE = (9, "FailedToParse")
UNAUTHORIZED = (13, "Unauthorized")
TYPE_MISMATCH = (14, "TypeMismatch")
AUTHENTICATION_FAILED = (18, "AuthenticationFailed")
ILLEGAL_OPERATION = (20, "IllegalOperation")
NAMESPACE_NOT_FOUND = (26, "NamespaceNotFound")
CURSOR_NOT_FOUND = (43, "CursorNotFound")
NAMESPACE_EXISTS = (48, "NamespaceExists")
COMMAND_NOT_FOUND = (59, "CommandNotFound")
INVALID_OPTIONS = (72, "InvalidOptions")
INVALID_NAMESPACE = (73, "InvalidNamespace")
NO_SUCH_TRANSACTION = (251, "NoSuchTransaction")
TRANSACTION_COMMITTED = (256, "TransactionCommitted")
CHANGE_STREAM_FATAL = (280, "ChangeStreamFatalError")
CHANGE_STREAM_HISTORY_LOST = (286, "ChangeStreamHistoryLost")
DUPLICATE_KEY = (11000, "DuplicateKey")
LOCATION40324 = (40324, "Location40324")  # unrecognized pipeline stage
