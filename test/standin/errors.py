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
INTERNAL_ERROR = (1, "InternalError")
INDEX_NOT_FOUND = (27, "IndexNotFound")
IMMUTABLE_FIELD = (66, "ImmutableField")
WRITE_CONFLICT = (112, "WriteConflict")
NOT_IMPLEMENTED = (238, "NotImplemented")
TRANSACTION_TOO_OLD = (225, "TransactionTooOld")
OPERATION_NOT_SUPPORTED_IN_TRANSACTION = (263, "OperationNotSupportedInTransaction")
MECHANISM_UNAVAILABLE = (334, "MechanismUnavailable")

# Names of codes a fail point may be asked to produce (errorCode), from
# MongoDB's error_codes.yml.  Codes not listed are named "Location<code>".
_NAMES = {
    1: "InternalError", 2: "BadValue", 6: "HostUnreachable", 7: "HostNotFound",
    8: "UnknownError", 9: "FailedToParse", 11: "UserNotFound", 13: "Unauthorized",
    14: "TypeMismatch", 18: "AuthenticationFailed", 20: "IllegalOperation",
    26: "NamespaceNotFound", 27: "IndexNotFound", 43: "CursorNotFound",
    48: "NamespaceExists", 50: "MaxTimeMSExpired", 59: "CommandNotFound",
    63: "StaleShardVersion", 64: "WriteConcernFailed", 66: "ImmutableField",
    72: "InvalidOptions", 73: "InvalidNamespace", 89: "NetworkTimeout",
    91: "ShutdownInProgress", 96: "OperationFailed", 112: "WriteConflict",
    133: "FailedToSatisfyReadPreference", 134: "ReadConcernMajorityNotAvailableYet",
    136: "CappedPositionLost", 150: "StaleEpoch", 175: "QueryPlanKilled",
    189: "PrimarySteppedDown", 225: "TransactionTooOld", 237: "CursorKilled",
    238: "NotImplemented", 251: "NoSuchTransaction", 256: "TransactionCommitted",
    262: "ExceededTimeLimit", 263: "OperationNotSupportedInTransaction",
    280: "ChangeStreamFatalError", 286: "ChangeStreamHistoryLost",
    9001: "SocketException", 10107: "NotWritablePrimary", 11000: "DuplicateKey",
    11600: "InterruptedAtShutdown", 11601: "Interrupted",
    11602: "InterruptedDueToReplStateChange", 13388: "StaleConfig",
    13435: "NotPrimaryNoSecondaryOk", 13436: "NotPrimaryOrSecondary",
    40324: "Location40324",
}


def code_name(code):
    """MongoDB's name for an error code."""
    return _NAMES.get(int(code), "Location%d" % int(code))
