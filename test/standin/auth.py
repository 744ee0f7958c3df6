"""SCRAM-SHA-256 authentication (RFC 5802 / RFC 7677) as MongoDB runs it:
saslStart, saslContinue, the final empty saslContinue, and
speculativeAuthenticate inside hello.

Rules of this file:
- The users live in authz.Registry: the --auth USER:PASSWORD user is
  defined in the admin database with the root role; createUser adds more,
  each in its own database (the authSource a client names).
- Only SCRAM-SHA-256; any other mechanism is MechanismUnavailable (334).
- Every failure is AuthenticationFailed (18) with mongod's message, and
  never says which part was wrong.
- Conversation state lives on the connection (conn.sasl).
"""

import base64
import hashlib
import hmac
import os
import unicodedata

from bson.binary import Binary

from . import authz
from .errors import CommandError, AUTHENTICATION_FAILED, MECHANISM_UNAVAILABLE, \
    BAD_VALUE

MECHANISM = "SCRAM-SHA-256"
ITERATIONS = 15000
AUTH_DB = "admin"


def _failed():
    return CommandError(*AUTHENTICATION_FAILED, "Authentication failed.")


def saslprep(s):
    """A minimal SASLprep (RFC 4013): map non-ASCII spaces to space, remove
    mapped-to-nothing characters, NFKC."""
    out = []
    for ch in s:
        if unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif ch in "\u00ad\u034f\u1806\u180b\u180c\u180d\u200b\u200c\u200d\u2060"\
                "\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09"\
                "\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f\ufeff":
            continue
        else:
            out.append(ch)
    return unicodedata.normalize("NFKC", "".join(out))


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def make_credentials(password):
    """SCRAM-SHA-256 credentials of a password, as mongod stores them."""
    # mongod (and libmongoc, which checks it) use hash size - 4 bytes
    salt = os.urandom(28)
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"),
                                 salt, ITERATIONS)
    client_key = _hmac(salted, b"Client Key")
    return {"iterationCount": ITERATIONS, "salt": Binary(salt),
            "storedKey": Binary(hashlib.sha256(client_key).digest()),
            "serverKey": Binary(_hmac(salted, b"Server Key"))}


class Auth:
    def __init__(self, user, password):
        self.user = user
        self.users = authz.Registry(make_credentials)
        self.users.add_root(AUTH_DB, user, password)

    def attach(self, dbpath):
        """Keep users and roles in dbpath (loaded now, saved on change)."""
        self.users.attach(dbpath)

    def has_user(self, name, db=AUTH_DB):
        return self.users.credentials(db, name) is not None

    def sasl_start(self, conn, body, db=None):
        db = body.get("db", db)
        mech = body.get("mechanism")
        if mech != MECHANISM:
            raise CommandError(*MECHANISM_UNAVAILABLE,
                               "Received authentication for mechanism %s which is not "
                               "enabled" % mech)
        payload = _payload(body)
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise _failed()
        # gs2 header: "n,," (no channel binding) or "y,,"; no authzid
        if not (text.startswith("n,,") or text.startswith("y,,")):
            raise CommandError(*BAD_VALUE, "SCRAM-SHA-256: unsupported gs2 header")
        bare = text[3:]
        attrs = _attrs(bare)
        if "n" not in attrs or "r" not in attrs:
            raise _failed()
        user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
        options = body.get("options") or {}
        conn.sasl = None
        cred = self.users.credentials(db, user) if isinstance(db, str) else None
        if cred is None:
            raise _failed()
        nonce = attrs["r"] + base64.b64encode(os.urandom(24)).decode()
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(bytes(cred["salt"])).decode(),
                                          cred["iterationCount"])
        conn.sasl = {"bare": bare, "server_first": server_first, "nonce": nonce,
                     "step": 1, "user": user, "db": db, "cred": cred,
                     "skip_empty": bool(isinstance(options, dict) and
                                        options.get("skipEmptyExchange"))}
        return {"conversationId": 1, "done": False,
                "payload": Binary(server_first.encode()), "ok": 1.0}

    def sasl_continue(self, conn, body):
        st = getattr(conn, "sasl", None)
        if st is None or body.get("conversationId", 1) != 1:
            raise CommandError(*AUTHENTICATION_FAILED,
                               "No SASL session state found")
        payload = _payload(body)
        if st["step"] == 2:
            # the final, empty exchange
            conn.sasl = None
            return {"conversationId": 1, "done": True, "payload": Binary(b""),
                    "ok": 1.0}
        try:
            final = payload.decode("utf-8")
        except UnicodeDecodeError:
            conn.sasl = None
            raise _failed()
        attrs = _attrs(final)
        if attrs.get("r") != st["nonce"] or "p" not in attrs or "c" not in attrs:
            conn.sasl = None
            raise _failed()
        without_proof = final[:final.rindex(",p=")]
        auth_message = ("%s,%s,%s" % (st["bare"], st["server_first"],
                                      without_proof)).encode()
        try:
            proof = base64.b64decode(attrs["p"], validate=True)
        except ValueError:
            conn.sasl = None
            raise _failed()
        stored_key = bytes(st["cred"]["storedKey"])
        signature = _hmac(stored_key, auth_message)
        if len(proof) != len(signature):
            conn.sasl = None
            raise _failed()
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key):
            conn.sasl = None
            raise _failed()
        server_sig = base64.b64encode(_hmac(bytes(st["cred"]["serverKey"]),
                                            auth_message)).decode()
        conn.user = st["user"]
        conn.user_db = st["db"]
        done = st["skip_empty"]
        if done:
            conn.sasl = None
        else:
            st["step"] = 2
        return {"conversationId": 1, "done": done,
                "payload": Binary(("v=%s" % server_sig).encode()), "ok": 1.0}


def _payload(body):
    p = body.get("payload")
    if isinstance(p, str):
        return p.encode("utf-8")
    if isinstance(p, (bytes, bytearray)):
        return bytes(p)
    raise CommandError(*BAD_VALUE, "SASL payload must be binary data")


def _attrs(text):
    out = {}
    for part in text.split(","):
        if len(part) >= 2 and part[1] == "=":
            out.setdefault(part[0], part[2:])
    return out


def from_option(value):
    """Auth from an --auth USER:PASSWORD option."""
    if ":" not in value:
        raise ValueError("--auth takes USER:PASSWORD")
    user, password = value.split(":", 1)
    if not user:
        raise ValueError("--auth: the user name is empty")
    return Auth(user, password)
