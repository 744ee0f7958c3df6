"""Users, roles and privileges of a stand-in started with --auth.

The --auth user is root; it creates users (createUser, in any database)
with built-in roles or roles of its own (createRole), and every command
is checked against the privileges the user's roles give, as mongod does:
Unauthorized (13) with "not authorized on DB to execute command { ... }".

Stand-in only: the root user comes from the server's command line.
"""
import pymongo
import pytest
from pymongo.errors import OperationFailure

pytestmark = pytest.mark.standin_only

ROOT = "root"
ROOT_PW = "root-pw"
DB = "shop"


@pytest.fixture
def server(standin):
    return standin(auth="%s:%s" % (ROOT, ROOT_PW))


def connect(server, user, pw, source="admin"):
    return pymongo.MongoClient(server.uri(), username=user, password=pw,
                               authSource=source, serverSelectionTimeoutMS=10000)


@pytest.fixture
def root(server):
    c = connect(server, ROOT, ROOT_PW)
    c[DB].items.insert_many([{"_id": i, "x": i} for i in range(5)])
    c[DB].other.insert_one({"_id": 1})
    c.other_db.t.insert_one({"_id": 1})
    yield c
    c.close()


@pytest.fixture
def users(server, root):
    """Open clients, closed at the end."""
    made = []

    def make(name, roles, source="admin", pw="pw-1"):
        root[source].command("createUser", name, pwd=pw, roles=roles)
        c = connect(server, name, pw, source)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def refused(fn):
    with pytest.raises(OperationFailure) as e:
        fn()
    assert e.value.code == 13, e.value.details
    assert e.value.details["codeName"] == "Unauthorized"
    return e.value.details["errmsg"]


def test_root_from_the_command_line(root):
    s = root.admin.command("connectionStatus", showPrivileges=True)["authInfo"]
    assert s["authenticatedUsers"] == [{"user": ROOT, "db": "admin"}]
    assert s["authenticatedUserRoles"] == [{"role": "root", "db": "admin"}]
    assert s["authenticatedUserPrivileges"] == [
        {"resource": {"anyResource": True}, "actions": ["anyAction"]}]


def test_connection_status_and_fail_points_need_no_authentication(server):
    c = pymongo.MongoClient(server.uri(), serverSelectionTimeoutMS=10000)
    try:
        s = c.admin.command("connectionStatus")["authInfo"]
        assert s == {"authenticatedUsers": [], "authenticatedUserRoles": []}
        # a test command: mongod asks no authentication for it either
        assert c.admin.command("configureFailPoint", "failCommand", mode="off")["ok"] == 1
        with pytest.raises(OperationFailure) as e:
            c.shop.items.find_one()
        assert e.value.code == 13
    finally:
        c.close()


def test_read_role(users):
    c = users("reader", [{"role": "read", "db": DB}])
    d = c[DB]
    assert [x["_id"] for x in d.items.find({"x": {"$gte": 3}})] == [3, 4]
    assert d.items.count_documents({}) == 5
    assert d.command("collStats", "items")["count"] == 5
    assert d.command("dbStats")["objects"] == 6
    assert sorted(d.list_collection_names()) == ["items", "other"]
    # authorizedCollections: the collections the user has any privilege on
    got = d.command("listCollections", nameOnly=True, authorizedCollections=True)
    assert sorted(x["name"] for x in got["cursor"]["firstBatch"]) == ["items", "other"]
    assert [i["name"] for i in d.items.list_indexes()] == ["_id_"]
    assert list(d.items.aggregate([{"$lookup": {"from": "other", "localField": "_id",
                                                "foreignField": "_id", "as": "o"}},
                                   {"$match": {"_id": 1}}])) == \
        [{"_id": 1, "x": 1, "o": [{"_id": 1}]}]
    assert list(d.items.aggregate([{"$collStats": {"count": {}}}]))[0]["count"] == 5
    with d.items.watch() as cs:
        assert cs.try_next() is None
    with d.watch() as cs:              # a database's stream: read on the database
        assert cs.try_next() is None
    msg = refused(lambda: d.items.insert_one({"_id": 9}))
    assert msg.startswith('not authorized on shop to execute command { insert: "items"')
    refused(lambda: d.items.update_one({"_id": 1}, {"$set": {"x": 0}}))
    refused(lambda: d.items.delete_one({"_id": 1}))
    refused(lambda: d.items.find_one_and_update({"_id": 1}, {"$set": {"x": 0}}))
    refused(lambda: d.items.create_index("x"))
    refused(lambda: d.items.drop())
    refused(lambda: c.other_db.t.find_one())
    refused(lambda: c.admin.command("createUser", "x", pwd="p", roles=[]))
    refused(lambda: c.admin.command("usersInfo", "root"))
    # a cluster-wide stream needs find and changeStream on every database
    refused(lambda: c.admin.watch().try_next())


def test_read_write_role_and_transactions(users, root):
    c = users("writer", [{"role": "readWrite", "db": DB}])
    d = c[DB]
    d.items.insert_one({"_id": 10})
    d.items.update_one({"_id": 10}, {"$set": {"x": 1}}, upsert=True)
    d.items.delete_one({"_id": 0})
    assert d.items.find_one_and_update({"_id": 1}, {"$set": {"x": 11}})["x"] == 1
    with c.start_session() as s:
        with s.start_transaction():
            d.items.insert_one({"_id": 20}, session=s)
            d.items.update_one({"_id": 20}, {"$set": {"x": 2}}, session=s)
    assert root[DB].items.find_one({"_id": 20}) == {"_id": 20, "x": 2}
    d.create_collection("made")
    d.made.create_index("x")
    d.made.drop()
    refused(lambda: d.command("dropDatabase"))      # dbAdmin's
    refused(lambda: c.other_db.t.insert_one({"_id": 2}))


def test_out_needs_insert_and_remove_on_the_target(users):
    c = users("reader", [{"role": "read", "db": DB}])
    refused(lambda: list(c[DB].items.aggregate([{"$out": "copy"}])))


def test_user_defined_role_on_one_collection(users, root):
    root.admin.command("createRole", "itemsFind",
                       privileges=[{"resource": {"db": DB, "collection": "items"},
                                    "actions": ["find"]}], roles=[])
    c = users("narrow", ["itemsFind"])
    d = c[DB]
    assert d.items.count_documents({}) == 5
    refused(lambda: d.other.find_one())
    refused(lambda: d.items.aggregate([{"$lookup": {"from": "other", "localField": "_id",
                                                    "foreignField": "_id", "as": "o"}}]))
    msg = refused(lambda: d.items.watch().try_next())
    assert '$changeStream' in msg
    refused(lambda: d.command("listCollections"))
    # only what the user may touch, when asked for authorized collections
    got = d.command("listCollections", nameOnly=True, authorizedCollections=True)
    assert [x["name"] for x in got["cursor"]["firstBatch"]] == ["items"]
    # a grant reaches connections already authenticated
    root.admin.command("grantPrivilegesToRole", "itemsFind",
                       privileges=[{"resource": {"db": DB, "collection": "items"},
                                    "actions": ["changeStream"]}])
    with d.items.watch() as cs:
        root[DB].items.insert_one({"_id": 50})
        ev = None
        for _ in range(20):
            ev = cs.try_next()
            if ev is not None:
                break
        assert ev["documentKey"] == {"_id": 50}
    refused(lambda: d.watch().try_next())    # the database's stream: not granted
    root.admin.command("revokePrivilegesFromRole", "itemsFind",
                       privileges=[{"resource": {"db": DB, "collection": "items"},
                                    "actions": ["changeStream"]}])
    refused(lambda: d.items.watch().try_next())


def test_inherited_roles_and_roles_info(users, root):
    root.admin.command("createRole", "base",
                       privileges=[{"resource": {"db": DB, "collection": "other"},
                                    "actions": ["find"]}], roles=[])
    root.admin.command("createRole", "top", privileges=[],
                       roles=["base", {"role": "read", "db": "other_db"}])
    c = users("heir", ["top"])
    assert c[DB].other.find_one() == {"_id": 1}
    assert c.other_db.t.find_one() == {"_id": 1}
    refused(lambda: c[DB].items.find_one())
    info = root.admin.command("rolesInfo", "top", showPrivileges=True)["roles"][0]
    assert info["roles"] == [{"role": "base", "db": "admin"}, {"role": "read", "db": "other_db"}]
    assert info["privileges"] == []
    assert {"resource": {"db": DB, "collection": "other"}, "actions": ["find"]} in \
        info["inheritedPrivileges"]
    s = c.admin.command("connectionStatus")["authInfo"]
    assert s["authenticatedUserRoles"] == [{"role": "top", "db": "admin"},
                                           {"role": "base", "db": "admin"},
                                           {"role": "read", "db": "other_db"}]
    builtin = root.admin.command("rolesInfo", {"role": "read", "db": DB},
                                 showPrivileges=True)["roles"][0]
    assert builtin["isBuiltin"] is True
    assert builtin["privileges"][0] == {
        "resource": {"db": DB, "collection": ""},
        "actions": ["changeStream", "collStats", "dbHash", "dbStats", "find",
                    "killCursors", "listCollections", "listIndexes"]}
    # a user sees their own roles and user, nobody else's
    assert c.admin.command("rolesInfo", "top")["roles"][0]["role"] == "top"
    assert c.admin.command("usersInfo", "heir")["users"][0]["roles"] == \
        [{"role": "top", "db": "admin"}]
    refused(lambda: c.admin.command("usersInfo", "root"))


def test_grant_and_revoke_roles_to_user(users, root):
    c = users("late", [])
    refused(lambda: c[DB].items.find_one())
    root.admin.command("grantRolesToUser", "late", roles=[{"role": "read", "db": DB}])
    assert c[DB].items.find_one({"_id": 1}) == {"_id": 1, "x": 1}
    root.admin.command("revokeRolesFromUser", "late", roles=[{"role": "read", "db": DB}])
    refused(lambda: c[DB].items.find_one())
    root.admin.command("updateUser", "late", roles=[{"role": "readWrite", "db": DB}])
    c[DB].items.insert_one({"_id": 30})
    u = root.admin.command("usersInfo", "late")["users"][0]
    assert u["roles"] == [{"role": "readWrite", "db": DB}]
    assert u["mechanisms"] == ["SCRAM-SHA-256"]


def test_user_in_another_database(users):
    c = users("local_user", ["read"], source=DB)
    assert c[DB].items.count_documents({}) == 5
    s = c.admin.command("connectionStatus")["authInfo"]
    assert s["authenticatedUsers"] == [{"user": "local_user", "db": DB}]
    refused(lambda: c.other_db.t.find_one())


def test_dropped_user_loses_access(server, users, root):
    c = users("gone", [{"role": "read", "db": DB}])
    assert c[DB].items.find_one({"_id": 2})
    root.admin.command("dropUser", "gone")
    refused(lambda: c[DB].items.find_one())
    again = pymongo.MongoClient(server.uri(), username="gone", password="pw-1",
                                authMechanism="SCRAM-SHA-256",
                                serverSelectionTimeoutMS=10000)
    with pytest.raises(OperationFailure) as e:
        again.admin.command("ping")
    again.close()
    assert e.value.code == 18


def test_cursors_belong_to_their_user(users, root):
    a = users("a", [{"role": "read", "db": DB}])
    b = users("b", [{"role": "read", "db": DB}])
    first = a[DB].command("find", "items", batchSize=1)
    cid = first["cursor"]["id"]
    msg = refused(lambda: b[DB].command("getMore", cid, collection="items"))
    assert "was not created by the authenticated user" in msg
    refused(lambda: b[DB].command("killCursors", "items", cursors=[cid]))
    more = a[DB].command("getMore", cid, collection="items")
    assert [x["_id"] for x in more["cursor"]["nextBatch"]] == [1, 2, 3, 4]


@pytest.mark.parametrize("cmd,code", [
    ({"createUser": "root", "pwd": "x", "roles": []}, 51003),
    ({"createUser": "y", "pwd": "x", "roles": ["noSuchRole"]}, 31),
    ({"createUser": "y", "pwd": "x", "roles": [{"role": "readAnyDatabase", "db": DB}]}, 31),
    ({"dropUser": "nobody"}, 11),
    ({"dropRole": "noSuchRole"}, 31),
    ({"createRole": "read", "privileges": [], "roles": []}, 2),
    ({"createRole": "r", "privileges": [{"resource": {"db": DB, "collection": "x"},
                                         "actions": ["fly"]}], "roles": []}, 2),
    ({"createUser": "y", "pwd": "x", "roles": [], "mechanisms": ["SCRAM-SHA-1"]}, 238),
])
def test_user_and_role_errors(root, cmd, code):
    with pytest.raises(OperationFailure) as e:
        root.admin.command(cmd)
    assert e.value.code == code


def test_users_and_roles_survive_a_restart(standin):
    s = standin(auth="%s:%s" % (ROOT, ROOT_PW), dbpath=True)
    c = connect(s, ROOT, ROOT_PW)
    c.admin.command("createRole", "keep", privileges=[
        {"resource": {"db": DB, "collection": "items"}, "actions": ["find"]}], roles=[])
    c.admin.command("createUser", "kept", pwd="kept-pw", roles=["keep"])
    c[DB].items.insert_one({"_id": 1})
    c.close()
    s.kill9()
    s.restart()
    k = connect(s, "kept", "kept-pw")
    try:
        assert k[DB].items.find_one() == {"_id": 1}
        refused(lambda: k[DB].other.find_one())
    finally:
        k.close()
