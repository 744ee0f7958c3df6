"""Users, roles and privileges: MongoDB's authorization model.

Rules of this file:
- A user lives in one database (its authSource) and has roles; a role
  grants privileges ({resource, actions}) and inherits other roles.  The
  built-in roles are those of MongoDB's manual ("Built-In Roles"), with
  the action sets it lists, for the actions the stand-in checks; root
  may do everything (mongod's root may not write system collections
  directly: the stand-in has none a client could write).
- Privileges are computed from the registry on every command, so
  grantRolesToUser, grantPrivilegesToRole or dropUser take effect on
  connections already authenticated, as mongod's user cache invalidation
  makes them do.
- required(ctx) gives the privileges a command needs, as each command's
  "Required Access" says; check() fails with Unauthorized (13) and
  mongod's message: "not authorized on DB to execute command { ... }".
- The user and role commands (createUser ... rolesInfo) are here; with
  --dbpath the registry is kept in DBPATH/users.bson (written whole on
  every change, replaced atomically).
"""

import datetime
import os
import threading
import uuid

import bson
from bson.binary import Binary, UUID_SUBTYPE
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from .errors import CommandError, BAD_VALUE, UNAUTHORIZED, FAILED_TO_PARSE

USER_NOT_FOUND = (11, "UserNotFound")
ROLE_NOT_FOUND = (31, "RoleNotFound")
ROLE_DATA_INCONSISTENT = (32, "RoleDataInconsistent")
USER_EXISTS = (51003, "Location51003")
ROLE_EXISTS = (51002, "Location51002")

# Read and write actions of the database user roles (manual, MongoDB 6.0).
READ_ACTIONS = frozenset([
    "changeStream", "collStats", "dbHash", "dbStats", "find", "killCursors",
    "listCollections", "listIndexes"])
READ_WRITE_ACTIONS = READ_ACTIONS | frozenset([
    "convertToCapped", "createCollection", "createIndex", "dropCollection",
    "dropIndex", "insert", "remove", "renameCollectionSameDB", "update"])
DB_ADMIN_ACTIONS = frozenset([
    "bypassDocumentValidation", "collMod", "collStats", "compact", "convertToCapped",
    "createCollection", "createIndex", "dbHash", "dbStats", "dropCollection",
    "dropDatabase", "dropIndex", "enableProfiler", "listCollections", "listIndexes",
    "planCacheIndexFilter", "planCacheRead", "planCacheWrite", "reIndex",
    "renameCollectionSameDB", "storageDetails", "validate"])
DB_ADMIN_PROFILE_ACTIONS = frozenset([
    "changeStream", "collStats", "convertToCapped", "createCollection", "dbHash",
    "dbStats", "dropCollection", "find", "killCursors", "listCollections",
    "listIndexes", "planCacheRead"])
USER_ADMIN_ACTIONS = frozenset([
    "changeCustomData", "changePassword", "createRole", "createUser", "dropRole",
    "dropUser", "grantRole", "revokeRole", "setAuthenticationRestriction",
    "viewRole", "viewUser"])
CLUSTER_MONITOR_CLUSTER_ACTIONS = frozenset([
    "checkFreeMonitoringStatus", "connPoolStats", "getCmdLineOpts",
    "getDefaultRWConcern", "getLog", "getParameter", "getShardMap", "hostInfo",
    "inprog", "listDatabases", "listSessions", "listShards", "netstat",
    "replSetGetConfig", "replSetGetStatus", "serverStatus", "setFreeMonitoring",
    "shardingState", "top", "useUUID"])
CLUSTER_MONITOR_DB_ACTIONS = frozenset([
    "collStats", "dbStats", "getShardVersion", "indexStats", "useUUID"])

# Every action name a user-defined role may grant (Privilege Actions).
ACTIONS = READ_WRITE_ACTIONS | DB_ADMIN_ACTIONS | USER_ADMIN_ACTIONS | \
    CLUSTER_MONITOR_CLUSTER_ACTIONS | CLUSTER_MONITOR_DB_ACTIONS | frozenset([
        "anyAction", "bypassWriteBlockingMode", "changeOwnCustomData",
        "changeOwnPassword", "killAnyCursor", "killAnySession", "killop",
        "listCachedAndActiveUsers", "shutdown", "fsync", "applicationMessage",
        "dropConnections", "flushRouterConfig", "invalidateUserCache", "logRotate",
        "replSetConfigure", "replSetStateChange", "resync", "setParameter",
        "cleanupOrphaned", "enableSharding", "moveChunk", "splitChunk",
        "splitVector", "addShard", "removeShard", "impersonate", "listSearchIndexes",
        "createSearchIndexes", "dropSearchIndex", "updateSearchIndex",
        "setFeatureCompatibilityVersion", "setDefaultRWConcern", "dbCheck",
        "authSchemaUpgrade", "cpuProfiler", "diagLogging", "oidReset", "appendOplogNote",
        "internal", "analyzeShardKey", "checkMetadataConsistency"])

# Built-in roles on every database, and those only on admin.
DB_ROLES = ("read", "readWrite", "dbAdmin", "userAdmin", "dbOwner")
ADMIN_ROLES = ("readAnyDatabase", "readWriteAnyDatabase", "dbAdminAnyDatabase",
               "userAdminAnyDatabase", "clusterMonitor", "root")


# ---------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------
# A resource is a tuple:
#   ("ns", db, coll)   {db: "x", collection: "y"}
#   ("db", db)         {db: "x", collection: ""}: non-system collections of x
#   ("coll", coll)     {db: "", collection: "y"}: y in every database
#   ("any",)           {db: "", collection: ""}: every non-system collection
#   ("cluster",)       {cluster: true}
#   ("anyResource",)   {anyResource: true}

def parse_resource(doc):
    if not isinstance(doc, dict):
        raise CommandError(*BAD_VALUE, "resource must be an object")
    if doc.get("cluster") is True and len(doc) == 1:
        return ("cluster",)
    if doc.get("anyResource") is True and len(doc) == 1:
        return ("anyResource",)
    db, coll = doc.get("db"), doc.get("collection")
    if set(doc) != {"db", "collection"} or not isinstance(db, str) or \
            not isinstance(coll, str):
        raise CommandError(*BAD_VALUE,
                           "A resource must be {db: <string>, collection: <string>}, "
                           "{cluster: true} or {anyResource: true}; got %s" % to_string(doc))
    if db and coll:
        return ("ns", db, coll)
    if db:
        return ("db", db)
    if coll:
        return ("coll", coll)
    return ("any",)


def resource_doc(res):
    kind = res[0]
    if kind == "ns":
        return {"db": res[1], "collection": res[2]}
    if kind == "db":
        return {"db": res[1], "collection": ""}
    if kind == "coll":
        return {"db": "", "collection": res[1]}
    if kind == "any":
        return {"db": "", "collection": ""}
    if kind == "cluster":
        return {"cluster": True}
    return {"anyResource": True}


def _is_system(coll):
    return coll.startswith("system.")


def covers(granted, target):
    """Does a privilege on resource `granted` apply to resource `target`?"""
    g = granted[0]
    if g == "anyResource":
        return True
    t = target[0]
    if g == "cluster" or t == "cluster":
        return g == t
    if t == "ns":
        db, coll = target[1], target[2]
        if g == "ns":
            return granted[1] == db and granted[2] == coll
        if _is_system(coll):
            return False
        if g == "db":
            return granted[1] == db
        if g == "coll":
            return granted[1] == coll
        return g == "any" and db not in ("local", "config")
    if t == "db":
        if g == "db":
            return granted[1] == target[1]
        return g == "any" and target[1] not in ("local", "config")
    if t == "any":
        return g == "any"
    return False


def _dbs_of(res):
    return {res[1]} if res[0] in ("ns", "db") else set()


# ---------------------------------------------------------------------------
# Built-in roles
# ---------------------------------------------------------------------------

def is_builtin(role, db):
    return role in DB_ROLES or (db == "admin" and role in ADMIN_ROLES)


def builtin_privileges(role, db):
    """[(resource, frozenset(actions))] of a built-in role in db."""
    if role == "read":
        return [(("db", db), READ_ACTIONS), (("ns", db, "system.js"), READ_ACTIONS)]
    if role == "readWrite":
        return [(("db", db), READ_WRITE_ACTIONS),
                (("ns", db, "system.js"), READ_WRITE_ACTIONS)]
    if role == "dbAdmin":
        return [(("db", db), DB_ADMIN_ACTIONS),
                (("ns", db, "system.profile"), DB_ADMIN_PROFILE_ACTIONS)]
    if role == "userAdmin":
        return [(("db", db), USER_ADMIN_ACTIONS)]
    if role == "dbOwner":
        return (builtin_privileges("readWrite", db) + builtin_privileges("dbAdmin", db) +
                builtin_privileges("userAdmin", db))
    cluster_list = (("cluster",), frozenset(["listDatabases"]))
    if role == "readAnyDatabase":
        return [(("any",), READ_ACTIONS), cluster_list]
    if role == "readWriteAnyDatabase":
        return [(("any",), READ_WRITE_ACTIONS), cluster_list]
    if role == "dbAdminAnyDatabase":
        return [(("any",), DB_ADMIN_ACTIONS), cluster_list]
    if role == "userAdminAnyDatabase":
        return [(("any",), USER_ADMIN_ACTIONS),
                (("cluster",), frozenset(["authSchemaUpgrade", "invalidateUserCache",
                                          "listDatabases"]))]
    if role == "clusterMonitor":
        return [(("cluster",), CLUSTER_MONITOR_CLUSTER_ACTIONS),
                (("any",), CLUSTER_MONITOR_DB_ACTIONS),
                (("db", "config"), frozenset(["find", "collStats", "dbHash", "dbStats",
                                              "listCollections", "listIndexes"])),
                (("ns", "local", "oplog.rs"), frozenset(["find", "collStats"])),
                (("ns", "local", "system.replset"), frozenset(["find"]))]
    if role == "root":
        return [(("anyResource",), frozenset(["anyAction"]))]
    return []


# ---------------------------------------------------------------------------
# BSON as mongod prints it in messages (BSONObj::toString)
# ---------------------------------------------------------------------------

def to_string(v):
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join("%s: %s" % (k, to_string(x)) for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        return "[ " + ", ".join(to_string(x) for x in v) + " ]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, ObjectId):
        return "ObjectId('%s')" % v
    if isinstance(v, Timestamp):
        return "Timestamp(%d, %d)" % (v.time, v.inc)
    if isinstance(v, uuid.UUID):
        return 'UUID("%s")' % v
    if isinstance(v, Binary):
        if v.subtype in (3, UUID_SUBTYPE) and len(v) == 16:
            return 'UUID("%s")' % uuid.UUID(bytes=bytes(v))
        return "BinData(%d, %s)" % (v.subtype, bytes(v).hex().upper())
    if isinstance(v, bytes):
        return "BinData(0, %s)" % v.hex().upper()
    if isinstance(v, datetime.datetime):
        return "new Date(%d)" % int(v.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    return str(v)


def unauthorized(ctx):
    body = {k: v for k, v in ctx.body.items() if k not in ctx.seq}
    return CommandError(*UNAUTHORIZED, "not authorized on %s to execute command %s"
                        % (ctx.db, to_string(body)))


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------

def _role_name(v, default_db):
    """{role, db} of a role given as a string or a document."""
    if isinstance(v, str):
        return v, default_db
    if isinstance(v, dict) and isinstance(v.get("role"), str) and \
            isinstance(v.get("db"), str):
        return v["role"], v["db"]
    raise CommandError(*BAD_VALUE, "a role must be a string or {role: <string>, "
                       "db: <string>}; got %s" % to_string(v))


def _privileges_arg(v):
    if not isinstance(v, list):
        raise CommandError(*BAD_VALUE, "privileges must be an array")
    out = []
    for p in v:
        if not isinstance(p, dict) or set(p) - {"resource", "actions"} or \
                "resource" not in p or not isinstance(p.get("actions"), list):
            raise CommandError(*BAD_VALUE, "a privilege must be {resource: <document>, "
                               "actions: [<string>, ...]}; got %s" % to_string(p))
        res = parse_resource(p["resource"])
        for a in p["actions"]:
            if a not in ACTIONS:
                raise CommandError(*BAD_VALUE, "Unrecognized action privilege string: %s"
                                   % a)
        out.append({"resource": resource_doc(res), "actions": sorted(set(p["actions"]))})
    return out


class Registry:
    """Users and user-defined roles; a lock of its own (the user commands
    run without the data lock)."""

    def __init__(self, make_credentials):
        self.make_credentials = make_credentials
        self.lock = threading.RLock()
        self.users = {}          # (db, name) -> user document
        self.roles = {}          # (db, name) -> role document
        self.path = None

    # -- persistence ---------------------------------------------------------
    def attach(self, dbpath):
        if not dbpath:
            return
        self.path = os.path.join(dbpath, "users.bson")
        try:
            with open(self.path, "rb") as f:
                data = bson.decode(f.read())
        except FileNotFoundError:
            data = None
        with self.lock:
            if data is not None:
                root = {k: v for k, v in self.users.items() if v.get("fromOption")}
                for u in data.get("users", []):
                    self.users[(u["db"], u["user"])] = u
                for r in data.get("roles", []):
                    self.roles[(r["db"], r["role"])] = r
                self.users.update(root)      # --auth's password wins
            self._save()

    def _save(self):
        if self.path is None:
            return
        data = {"users": [u for u in self.users.values() if not u.get("fromOption")],
                "roles": list(self.roles.values())}
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(bson.encode(data))
        os.replace(tmp, self.path)

    # -- users ---------------------------------------------------------------
    def add_root(self, db, name, password):
        self.users[(db, name)] = self._user_doc(db, name, password,
                                                [{"role": "root", "db": "admin"}])
        self.users[(db, name)]["fromOption"] = True

    def _user_doc(self, db, name, password, roles):
        return {"_id": "%s.%s" % (db, name),
                "userId": Binary(uuid.uuid4().bytes, UUID_SUBTYPE),
                "user": name, "db": db,
                "credentials": {"SCRAM-SHA-256": self.make_credentials(password)},
                "roles": roles}

    def credentials(self, db, name):
        with self.lock:
            u = self.users.get((db, name))
            return u["credentials"]["SCRAM-SHA-256"] if u else None

    def _check_role_exists(self, role, db):
        if not is_builtin(role, db) and (db, role) not in self.roles:
            raise CommandError(*ROLE_NOT_FOUND, "Could not find role: %s@%s" % (role, db))

    def _roles_arg(self, v, db):
        if not isinstance(v, list):
            raise CommandError(*BAD_VALUE, "roles must be an array")
        out = []
        for r in v:
            role, rdb = _role_name(r, db)
            self._check_role_exists(role, rdb)
            if {"role": role, "db": rdb} not in out:
                out.append({"role": role, "db": rdb})
        return out

    def _user(self, db, name):
        u = self.users.get((db, name))
        if u is None:
            raise CommandError(*USER_NOT_FOUND, "Could not find user \"%s\" for db \"%s\""
                               % (name, db))
        return u

    def _role(self, db, name):
        if is_builtin(name, db):
            raise CommandError(*BAD_VALUE, "Cannot modify built-in role: %s@%s"
                               % (name, db))
        r = self.roles.get((db, name))
        if r is None:
            raise CommandError(*ROLE_NOT_FOUND, "Could not find role: %s@%s" % (name, db))
        return r

    # -- privileges ----------------------------------------------------------
    def all_roles(self, direct):
        """Every role reachable from the direct roles, [(role, db)] in order."""
        seen = []
        todo = [(r["role"], r["db"]) for r in direct]
        while todo:
            rn = todo.pop(0)
            if rn in seen:
                continue
            seen.append(rn)
            role, db = rn
            r = self.roles.get((db, role))
            if r is not None:
                todo.extend((x["role"], x["db"]) for x in r["roles"])
        return seen

    def role_privileges(self, role, db):
        if is_builtin(role, db):
            return builtin_privileges(role, db)
        r = self.roles.get((db, role))
        if r is None:
            return []
        return [(parse_resource(p["resource"]), frozenset(p["actions"]))
                for p in r["privileges"]]

    def privileges_of(self, direct):
        out = []
        for role, db in self.all_roles(direct):
            out.extend(self.role_privileges(role, db))
        return out

    def user_privileges(self, db, name):
        with self.lock:
            u = self.users.get((db, name))
            return self.privileges_of(u["roles"]) if u else []


def allowed(privs, resource, action):
    for res, actions in privs:
        if ("anyAction" in actions or action in actions) and covers(res, resource):
            return True
    return False


def merged(privs):
    """Privileges as mongod reports them: one entry per resource."""
    out = {}
    for res, actions in privs:
        out.setdefault(res, set()).update(actions)
    return [{"resource": resource_doc(r), "actions": sorted(a)}
            for r, a in sorted(out.items(), key=lambda kv: repr(kv[0]))]


# ---------------------------------------------------------------------------
# What each command needs
# ---------------------------------------------------------------------------

# Commands that need authentication but no privilege (or check their own).
NO_PRIVILEGE = {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo",
                "saslStart", "saslContinue", "logout", "endSessions", "startSession",
                "connectionStatus", "commitTransaction", "abortTransaction", "getMore",
                "killCursors", "configureFailPoint", "usersInfo", "rolesInfo",
                "listDatabases"}


def _ns(db, coll):
    return ("ns", db, coll)


def _pipeline_needs(db, stages, out):
    """Privileges of the namespaces stages read or write."""
    for st in stages:
        if not isinstance(st, dict) or len(st) != 1:
            continue
        (op, arg), = st.items()
        if op in ("$lookup", "$graphLookup") and isinstance(arg, dict):
            frm = arg.get("from")
            if isinstance(frm, str):
                out.append((_ns(db, frm), ("find",)))
            elif isinstance(frm, dict) and isinstance(frm.get("db"), str) and \
                    isinstance(frm.get("coll"), str):
                out.append((_ns(frm["db"], frm["coll"]), ("find",)))
            if isinstance(arg.get("pipeline"), list):
                _pipeline_needs(db, arg["pipeline"], out)
        elif op == "$unionWith":
            coll = arg if isinstance(arg, str) else (arg.get("coll") if isinstance(arg, dict)
                                                     else None)
            if isinstance(coll, str):
                out.append((_ns(db, coll), ("find",)))
            if isinstance(arg, dict) and isinstance(arg.get("pipeline"), list):
                _pipeline_needs(db, arg["pipeline"], out)
        elif op == "$facet" and isinstance(arg, dict):
            for sub in arg.values():
                if isinstance(sub, list):
                    _pipeline_needs(db, sub, out)
        elif op == "$out":
            if isinstance(arg, str):
                target = _ns(db, arg)
            elif isinstance(arg, dict) and isinstance(arg.get("coll"), str):
                target = _ns(arg.get("db", db), arg["coll"])
            else:
                continue
            out.append((target, ("insert", "remove")))
        elif op == "$merge":
            into = arg.get("into") if isinstance(arg, dict) else arg
            if isinstance(into, str):
                out.append((_ns(db, into), ("insert", "update")))
            elif isinstance(into, dict) and isinstance(into.get("coll"), str):
                out.append((_ns(into.get("db", db), into["coll"]), ("insert", "update")))
        elif op in ("$currentOp", "$listLocalSessions", "$listSessions"):
            out.append((("cluster",), ("inprog",) if op == "$currentOp"
                        else ("listSessions",)))


def required(ctx):
    """[(resource, actions)] the command needs (all of them)."""
    name, db, body = ctx.name, ctx.db, ctx.body
    arg = body.get(name)
    coll = arg if isinstance(arg, str) else None
    if name in ("find", "count", "distinct"):
        return [(_ns(db, coll or ""), ("find",))]
    if name == "aggregate":
        pipeline = body.get("pipeline") if isinstance(body.get("pipeline"), list) else []
        first = pipeline[0] if pipeline and isinstance(pipeline[0], dict) else {}
        out = []
        if "$changeStream" in first:
            spec = first["$changeStream"] if isinstance(first["$changeStream"], dict) else {}
            if spec.get("allChangesForCluster"):
                res = ("any",)
            elif coll is None:
                res = ("db", db)
            else:
                res = _ns(db, coll)
            out.append((res, ("find", "changeStream")))
        elif "$collStats" in first:
            out.append((_ns(db, coll or ""), ("collStats",)))
        elif "$indexStats" in first:
            out.append((_ns(db, coll or ""), ("indexStats",)))
        elif coll is not None:
            out.append((_ns(db, coll), ("find",)))
        _pipeline_needs(db, pipeline, out)
        return out
    if name == "insert":
        return [(_ns(db, coll or ""), ("insert",))]
    if name == "update":
        ups = body.get("updates") if isinstance(body.get("updates"), list) else []
        upsert = any(isinstance(u, dict) and u.get("upsert") for u in ups)
        return [(_ns(db, coll or ""), ("update", "insert") if upsert else ("update",))]
    if name == "delete":
        return [(_ns(db, coll or ""), ("remove",))]
    if name in ("findAndModify", "findandmodify"):
        if body.get("remove"):
            acts = ("find", "remove")
        elif body.get("upsert"):
            acts = ("find", "update", "insert")
        else:
            acts = ("find", "update")
        return [(_ns(db, coll or ""), acts)]
    if name == "listCollections":
        if body.get("authorizedCollections") and body.get("nameOnly"):
            return []          # filtered to what the user may see
        return [(("db", db), ("listCollections",))]
    if name == "listIndexes":
        return [(_ns(db, coll or ""), ("listIndexes",))]
    if name == "collStats":
        return [(_ns(db, coll or ""), ("collStats",))]
    if name == "dbStats":
        return [(("db", db), ("dbStats",))]
    if name == "create":
        view_on = body.get("viewOn")
        out = [(_ns(db, coll or ""), ("createCollection",))]
        if isinstance(view_on, str):
            out.append((_ns(db, view_on), ("find",)))
        return out
    if name == "collMod":
        return [(_ns(db, coll or ""), ("collMod",))]
    if name == "drop":
        return [(_ns(db, coll or ""), ("dropCollection",))]
    if name == "dropDatabase":
        return [(("db", db), ("dropDatabase",))]
    if name == "serverStatus":
        return [(("cluster",), ("serverStatus",))]
    if name == "createIndexes":
        return [(_ns(db, coll or ""), ("createIndex",))]
    if name == "dropIndexes":
        return [(_ns(db, coll or ""), ("dropIndex",))]
    if name == "renameCollection":
        src, dst = body.get("renameCollection"), body.get("to")
        if not (isinstance(src, str) and isinstance(dst, str) and "." in src and "." in dst):
            return []
        sdb, scoll = src.split(".", 1)
        ddb, dcoll = dst.split(".", 1)
        if sdb == ddb:
            out = [(_ns(sdb, scoll), ("renameCollectionSameDB",)),
                   (_ns(ddb, dcoll), ("renameCollectionSameDB",))]
        else:
            out = [(_ns(sdb, scoll), ("find", "dropCollection")),
                   (_ns(ddb, dcoll), ("insert", "createIndex"))]
        if body.get("dropTarget"):
            out.append((_ns(ddb, dcoll), ("dropCollection",)))
        return out
    if name in USER_COMMANDS:
        return USER_COMMANDS[name][1](ctx)
    return None


def check(ctx):
    """Raise Unauthorized unless the connection's user may run the command.
    Unknown commands (None from required) are root's only."""
    conn = ctx.conn
    if ctx.name in NO_PRIVILEGE:
        return
    privs = ctx.server.auth.users.user_privileges(conn.user_db, conn.user)
    needs = required(ctx)
    if needs is None:
        needs = [(("anyResource",), ("anyAction",))]
    for res, actions in needs:
        for a in actions:
            if not allowed(privs, res, a):
                raise unauthorized(ctx)


def current_privileges(ctx):
    conn = ctx.conn
    if ctx.server.auth is None or not conn.user:
        return None        # everything
    return ctx.server.auth.users.user_privileges(conn.user_db, conn.user)


def may_see_collection(privs, db, coll):
    """listCollections with authorizedCollections: any action on it."""
    if privs is None:
        return True
    target = _ns(db, coll)
    return any(covers(res, target) for res, _a in privs)


def may_see_database(privs, db):
    if privs is None or allowed(privs, ("cluster",), "listDatabases"):
        return True
    for res, _a in privs:
        if res[0] == "anyResource" or (res[0] in ("ns", "db") and res[1] == db):
            return True
    return False


def cursor_owner(ctx):
    conn = ctx.conn
    return (conn.user_db, conn.user) if conn.user else None


def check_cursor_owner(ctx, cursor):
    """getMore and killCursors only on one's own cursors."""
    if ctx.server.auth is None:
        return
    owner = getattr(cursor, "owner", None)
    if owner is not None and owner != cursor_owner(ctx):
        raise CommandError(*UNAUTHORIZED, "cursor id %d was not created by the "
                           "authenticated user" % cursor.id)


# ---------------------------------------------------------------------------
# User and role commands
# ---------------------------------------------------------------------------

def _reg(ctx):
    if ctx.server.auth is None:
        raise CommandError(*BAD_VALUE, "%s needs a server started with --auth "
                           "(the stand-in has no users without it)" % ctx.name)
    return ctx.server.auth.users


def _role_dbs(v, db):
    out = set()
    if isinstance(v, list):
        for r in v:
            try:
                out.add(_role_name(r, db)[1])
            except CommandError:
                pass
    return out


def _need_on_dbs(action, dbs):
    return [(("db", d), (action,)) for d in sorted(dbs)]


def _name_arg(ctx):
    v = ctx.body.get(ctx.name)
    if not isinstance(v, str) or not v:
        raise CommandError(*BAD_VALUE, "%s takes a non-empty name as its first field"
                           % ctx.name)
    return v


def cmd_create_user(ctx):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    body = ctx.body
    pwd = body.get("pwd")
    if ctx.db == "$external" or not isinstance(pwd, str) or not pwd:
        raise CommandError(*BAD_VALUE, "Must provide a 'pwd' field for all user documents, "
                           "except those with '$external' as the user's source db")
    mechs = body.get("mechanisms")
    if mechs is not None and (not isinstance(mechs, list) or
                              any(m != "SCRAM-SHA-256" for m in mechs)):
        raise CommandError(238, "NotImplemented", "the stand-in has only SCRAM-SHA-256 "
                           "credentials; mechanisms %s cannot be honoured" % to_string(mechs))
    with reg.lock:
        if (ctx.db, name) in reg.users:
            raise CommandError(*USER_EXISTS, "User \"%s@%s\" already exists" % (name, ctx.db))
        roles = reg._roles_arg(body.get("roles", []), ctx.db)
        reg.users[(ctx.db, name)] = reg._user_doc(ctx.db, name, pwd, roles)
        reg._save()
    return {"ok": 1.0}


def cmd_drop_user(ctx):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    with reg.lock:
        reg._user(ctx.db, name)
        del reg.users[(ctx.db, name)]
        reg._save()
    return {"ok": 1.0}


def cmd_update_user(ctx):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    body = ctx.body
    with reg.lock:
        u = reg._user(ctx.db, name)
        new = dict(u)
        if "roles" in body:
            new["roles"] = reg._roles_arg(body["roles"], ctx.db)
        if "pwd" in body:
            if not isinstance(body["pwd"], str) or not body["pwd"]:
                raise CommandError(*BAD_VALUE, "pwd must be a non-empty string")
            new["credentials"] = {"SCRAM-SHA-256": reg.make_credentials(body["pwd"])}
        reg.users[(ctx.db, name)] = new
        reg._save()
    return {"ok": 1.0}


def _grant_revoke_user(ctx, grant):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    with reg.lock:
        u = reg._user(ctx.db, name)
        given = reg._roles_arg(ctx.body.get("roles"), ctx.db) if grant else \
            [dict(zip(("role", "db"), _role_name(r, ctx.db)))
             for r in (ctx.body.get("roles") if isinstance(ctx.body.get("roles"), list)
                       else _bad_roles())]
        roles = list(u["roles"])
        for r in given:
            if grant and r not in roles:
                roles.append(r)
            elif not grant and r in roles:
                roles.remove(r)
        reg.users[(ctx.db, name)] = dict(u, roles=roles)
        reg._save()
    return {"ok": 1.0}


def _bad_roles():
    raise CommandError(*BAD_VALUE, "roles must be an array")


def _check_no_cycle(reg, db, role, inherited):
    for r, rdb in reg.all_roles(inherited):
        if (r, rdb) == (role, db):
            raise CommandError(*BAD_VALUE,
                               "%s@%s would inherit itself" % (role, db))


def cmd_create_role(ctx):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    body = ctx.body
    if is_builtin(name, ctx.db):
        raise CommandError(*BAD_VALUE, "Cannot create roles with the same name as a "
                           "built-in role")
    if "privileges" not in body or "roles" not in body:
        raise CommandError(*FAILED_TO_PARSE, "createRole needs 'privileges' and 'roles'")
    privileges = _privileges_arg(body["privileges"])
    with reg.lock:
        if (ctx.db, name) in reg.roles:
            raise CommandError(*ROLE_EXISTS, "Role \"%s@%s\" already exists" % (name, ctx.db))
        inherited = reg._roles_arg(body["roles"], ctx.db)
        reg.roles[(ctx.db, name)] = {"_id": "%s.%s" % (ctx.db, name), "role": name,
                                     "db": ctx.db, "privileges": privileges,
                                     "roles": inherited}
        reg._save()
    return {"ok": 1.0}


def cmd_drop_role(ctx):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    with reg.lock:
        reg._role(ctx.db, name)
        del reg.roles[(ctx.db, name)]
        ref = {"role": name, "db": ctx.db}
        # mongod removes the role from every user and role that had it
        for k, u in list(reg.users.items()):
            if ref in u["roles"]:
                reg.users[k] = dict(u, roles=[r for r in u["roles"] if r != ref])
        for k, r in list(reg.roles.items()):
            if ref in r["roles"]:
                reg.roles[k] = dict(r, roles=[x for x in r["roles"] if x != ref])
        reg._save()
    return {"ok": 1.0}


def _privileges_change(ctx, grant):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    given = _privileges_arg(ctx.body.get("privileges"))
    with reg.lock:
        r = reg._role(ctx.db, name)
        privs = [dict(p, actions=list(p["actions"])) for p in r["privileges"]]
        for g in given:
            same = [p for p in privs if p["resource"] == g["resource"]]
            if grant:
                if same:
                    same[0]["actions"] = sorted(set(same[0]["actions"]) | set(g["actions"]))
                else:
                    privs.append(g)
            elif same:
                same[0]["actions"] = sorted(set(same[0]["actions"]) - set(g["actions"]))
        privs = [p for p in privs if p["actions"]]
        reg.roles[(ctx.db, name)] = dict(r, privileges=privs)
        reg._save()
    return {"ok": 1.0}


def _roles_change(ctx, grant):
    reg = _reg(ctx)
    name = _name_arg(ctx)
    with reg.lock:
        r = reg._role(ctx.db, name)
        given = reg._roles_arg(ctx.body.get("roles"), ctx.db)
        roles = list(r["roles"])
        for g in given:
            if grant and g not in roles:
                _check_no_cycle(reg, ctx.db, name, [g])
                roles.append(g)
            elif not grant and g in roles:
                roles.remove(g)
        reg.roles[(ctx.db, name)] = dict(r, roles=roles)
        reg._save()
    return {"ok": 1.0}


def _public_user(reg, u, show_privileges):
    out = {"_id": u["_id"], "userId": u["userId"], "user": u["user"], "db": u["db"],
           "roles": [dict(r) for r in u["roles"]], "mechanisms": ["SCRAM-SHA-256"]}
    if show_privileges:
        out["inheritedRoles"] = [{"role": r, "db": d} for r, d in reg.all_roles(u["roles"])]
        out["inheritedPrivileges"] = merged(reg.privileges_of(u["roles"]))
    return out


def _wanted_names(v, db, key):
    """usersInfo / rolesInfo argument: 1 (all in db), a name, {key, db},
    or an array of those.  [(db, name)] or None for all of db."""
    if v == 1 and not isinstance(v, bool):
        return None
    items = v if isinstance(v, list) else [v]
    out = []
    for x in items:
        if isinstance(x, str):
            out.append((db, x))
        elif isinstance(x, dict) and isinstance(x.get(key), str) and \
                isinstance(x.get("db"), str):
            out.append((x["db"], x[key]))
        else:
            raise CommandError(*BAD_VALUE, "%sInfo takes 1, a name, {%s: <name>, db: "
                               "<db>} or an array of those" % (key, key))
    return out


def cmd_users_info(ctx):
    reg = _reg(ctx)
    v = ctx.body.get("usersInfo")
    show = bool(ctx.body.get("showPrivileges"))
    privs = current_privileges(ctx)
    me = cursor_owner(ctx)
    with reg.lock:
        if isinstance(v, dict) and v.get("forAllDBs") is True:
            if privs is not None and not allowed(privs, ("cluster",), "viewUser") and \
                    not allowed(privs, ("any",), "viewUser"):
                raise unauthorized(ctx)
            keys = sorted(reg.users)
        else:
            names = _wanted_names(v, ctx.db, "user")
            keys = sorted(k for k in reg.users if k[0] == ctx.db) if names is None \
                else [k for k in names if k in reg.users]
            for k in (names if names is not None else [(ctx.db, "")]):
                if privs is not None and k != me and \
                        not allowed(privs, ("db", k[0]), "viewUser"):
                    raise unauthorized(ctx)
        users = [_public_user(reg, reg.users[k], show) for k in keys]
    return {"users": users, "ok": 1.0}


def _public_role(reg, role, db, show_privileges):
    builtin = is_builtin(role, db)
    direct = [] if builtin else [dict(r) for r in reg.roles[(db, role)]["roles"]]
    out = {"_id": "%s.%s" % (db, role), "role": role, "db": db, "isBuiltin": builtin,
           "roles": direct,
           "inheritedRoles": [{"role": r, "db": d}
                              for r, d in reg.all_roles(direct)]}
    if show_privileges:
        own = reg.role_privileges(role, db)
        out["privileges"] = merged(own)
        out["inheritedPrivileges"] = merged(own + reg.privileges_of(direct))
    return out


def cmd_roles_info(ctx):
    reg = _reg(ctx)
    v = ctx.body.get("rolesInfo")
    show = ctx.body.get("showPrivileges")
    show = bool(show) and show != "asUserFragment"
    privs = current_privileges(ctx)
    with reg.lock:
        names = _wanted_names(v, ctx.db, "role")
        if names is None:
            keys = sorted(k for k in reg.roles if k[0] == ctx.db)
            if ctx.body.get("showBuiltinRoles"):
                keys = [(ctx.db, r) for r in DB_ROLES + (ADMIN_ROLES if ctx.db == "admin"
                                                         else ())] + keys
            want = [(ctx.db, "")]
        else:
            keys = [k for k in names if is_builtin(k[1], k[0]) or k in reg.roles]
            want = names
        mine = set()
        if privs is not None:
            u = reg.users.get(cursor_owner(ctx))
            mine = {(d, r) for r, d in reg.all_roles(u["roles"])} if u else set()
        for k in want:
            if privs is not None and k not in mine and \
                    not allowed(privs, ("db", k[0]), "viewRole"):
                raise unauthorized(ctx)
        roles = [_public_role(reg, k[1], k[0], show) for k in keys]
    return {"roles": roles, "ok": 1.0}


def connection_status(ctx):
    conn = ctx.conn
    if not conn.user:
        return {"authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": []},
                "ok": 1.0}
    info = {"authenticatedUsers": [{"user": conn.user, "db": conn.user_db}],
            "authenticatedUserRoles": []}
    reg = ctx.server.auth.users
    with reg.lock:
        u = reg.users.get((conn.user_db, conn.user))
        if u is not None:
            info["authenticatedUserRoles"] = [{"role": r, "db": d}
                                              for r, d in reg.all_roles(u["roles"])]
            if ctx.body.get("showPrivileges"):
                info["authenticatedUserPrivileges"] = merged(reg.privileges_of(u["roles"]))
    return {"authInfo": info, "ok": 1.0}


def _needs_create_user(ctx):
    return [(("db", ctx.db), ("createUser",))] + \
        _need_on_dbs("grantRole", _role_dbs(ctx.body.get("roles"), ctx.db))


def _needs_update_user(ctx):
    out = []
    if "pwd" in ctx.body:
        mine = (ctx.db, ctx.body.get("updateUser")) == cursor_owner(ctx)
        out.append((("db", ctx.db), ("changeOwnPassword" if mine else "changePassword",)))
    if "roles" in ctx.body:
        out += _need_on_dbs("grantRole", _role_dbs(ctx.body.get("roles"), ctx.db))
        out += [(("db", ctx.db), ("revokeRole",))]
    return out


def _needs_create_role(ctx):
    return [(("db", ctx.db), ("createRole",))] + \
        _need_on_dbs("grantRole", _role_dbs(ctx.body.get("roles"), ctx.db))


def _privilege_dbs(ctx):
    dbs = set()
    v = ctx.body.get("privileges")
    for p in v if isinstance(v, list) else []:
        try:
            res = parse_resource(p.get("resource") if isinstance(p, dict) else None)
        except CommandError:
            continue
        dbs |= _dbs_of(res) or {"admin"}
    return dbs


USER_COMMANDS = {
    "createUser": (cmd_create_user, _needs_create_user),
    "dropUser": (cmd_drop_user, lambda ctx: [(("db", ctx.db), ("dropUser",))]),
    "updateUser": (cmd_update_user, _needs_update_user),
    "grantRolesToUser": (lambda ctx: _grant_revoke_user(ctx, True),
                         lambda ctx: _need_on_dbs("grantRole",
                                                  _role_dbs(ctx.body.get("roles"), ctx.db))),
    "revokeRolesFromUser": (lambda ctx: _grant_revoke_user(ctx, False),
                            lambda ctx: _need_on_dbs("revokeRole",
                                                     _role_dbs(ctx.body.get("roles"),
                                                               ctx.db))),
    "createRole": (cmd_create_role, _needs_create_role),
    "dropRole": (cmd_drop_role, lambda ctx: [(("db", ctx.db), ("dropRole",))]),
    "grantPrivilegesToRole": (lambda ctx: _privileges_change(ctx, True),
                              lambda ctx: _need_on_dbs("grantRole", _privilege_dbs(ctx))),
    "revokePrivilegesFromRole": (lambda ctx: _privileges_change(ctx, False),
                                 lambda ctx: _need_on_dbs("revokeRole",
                                                          _privilege_dbs(ctx))),
    "grantRolesToRole": (lambda ctx: _roles_change(ctx, True),
                         lambda ctx: _need_on_dbs("grantRole",
                                                  _role_dbs(ctx.body.get("roles"), ctx.db))),
    "revokeRolesFromRole": (lambda ctx: _roles_change(ctx, False),
                            lambda ctx: _need_on_dbs("revokeRole",
                                                     _role_dbs(ctx.body.get("roles"),
                                                               ctx.db))),
    "usersInfo": (cmd_users_info, None),
    "rolesInfo": (cmd_roles_info, None),
}

HANDLERS = {name: v[0] for name, v in USER_COMMANDS.items()}
