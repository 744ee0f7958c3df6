"""Time series collections (create with timeseries), as mongod 7.0 has them:
the create options and their errors, listCollections (the collection as
type "timeseries", its system.buckets collection as a plain one), inserts
that need a BSON date in the time field, reads, the update/delete rules,
findAndModify and change streams refused with 166, drop.  The stand-in
keeps the measurements as inserted (no buckets): see its DESIGN.md."""
import datetime

import pytest
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

T0 = datetime.datetime(2024, 3, 1, 12, 0, 0)


def _t(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def _readings(db, **ts):
    opts = {"timeField": "t", "metaField": "meta"}
    opts.update(ts)
    db.command("create", "readings", timeseries=opts)
    db.readings.insert_many([
        {"_id": 1, "t": _t(0), "meta": {"sensor": "a", "site": 1}, "temp": 20.5},
        {"_id": 2, "t": _t(5), "meta": {"sensor": "b", "site": 1}, "temp": 18.0},
        {"_id": 3, "t": _t(10), "meta": {"sensor": "a", "site": 1}, "temp": 21.0},
        {"_id": 4, "t": _t(15), "meta": {"sensor": "b", "site": 2}, "temp": 17.5},
    ])


def _version(client):
    return tuple(int(x) for x in client.server_info()["version"].split(".")[:2])


def _infos(db, **kw):
    return {i["name"]: i for i in db.list_collections(**kw)}


def _create_error(db, **kw):
    with pytest.raises(OperationFailure) as e:
        db.command("create", "bad", **kw)
    return e.value


# -- create ---------------------------------------------------------------

def test_list_collections_defaults_for_granularity(db):
    db.command("create", "s", timeseries={"timeField": "t"})
    db.command("create", "m", timeseries={"timeField": "t", "metaField": "md",
                                          "granularity": "minutes"})
    db.command("create", "h", timeseries={"timeField": "t", "granularity": "hours"},
               expireAfterSeconds=3600)
    infos = _infos(db)
    s = infos["s"]
    assert s["type"] == "timeseries"
    assert s["info"] == {"readOnly": False}
    assert "idIndex" not in s
    assert list(s["options"]["timeseries"].items()) == [
        ("timeField", "t"), ("granularity", "seconds"), ("bucketMaxSpanSeconds", 3600)]
    assert list(infos["m"]["options"]["timeseries"].items()) == [
        ("timeField", "t"), ("metaField", "md"), ("granularity", "minutes"),
        ("bucketMaxSpanSeconds", 86400)]
    h = infos["h"]["options"]
    assert h["expireAfterSeconds"] == 3600
    assert h["timeseries"]["bucketMaxSpanSeconds"] == 2592000
    assert h["timeseries"]["granularity"] == "hours"


def test_custom_bucketing(db):
    if _version(db.client) < (6, 3) and db.client.server_info().get("gitVersion") \
            != "0" * 40:
        pytest.skip("bucketMaxSpanSeconds/bucketRoundingSeconds need MongoDB 6.3+")
    db.command("create", "c", timeseries={"timeField": "t", "bucketMaxSpanSeconds": 600,
                                          "bucketRoundingSeconds": 600})
    ts = _infos(db)["c"]["options"]["timeseries"]
    assert list(ts.items()) == [("timeField", "t"), ("bucketRoundingSeconds", 600),
                                ("bucketMaxSpanSeconds", 600)]
    # the default for the granularity may be named with it
    db.command("create", "d", timeseries={"timeField": "t", "granularity": "minutes",
                                          "bucketMaxSpanSeconds": 86400})
    assert _infos(db)["d"]["options"]["timeseries"]["bucketMaxSpanSeconds"] == 86400
    e = _create_error(db, timeseries={"timeField": "t", "bucketMaxSpanSeconds": 600})
    assert e.code == 72
    assert "need to be set alongside each other" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "bucketMaxSpanSeconds": 600,
                                      "bucketRoundingSeconds": 60})
    assert e.code == 72
    assert "'bucketRoundingSeconds' needs to be equal to 'bucketMaxSpanSeconds'" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "granularity": "seconds",
                                      "bucketMaxSpanSeconds": 60})
    assert e.code == 72
    assert "other than the default of 3600 for the provided granularity" in str(e)


def test_create_errors(db):
    e = _create_error(db, timeseries={"metaField": "m"})
    assert e.code == 40414
    assert "'create.timeseries.timeField' is missing but a required field" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "metaField": "t"})
    assert e.code == 72
    assert "'metaField' cannot be the same as 'timeField'" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "metaField": "_id"})
    assert e.code == 72
    assert "'metaField' cannot be \"_id\"" in str(e)
    e = _create_error(db, timeseries={"timeField": "a.b"})
    assert e.code == 72
    assert "'timeField' must be a top-level field and not contain a '.'" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "metaField": "m.x"})
    assert e.code == 72
    assert "'metaField' must be a top-level field and not contain a '.'" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "granularity": "days"})
    assert e.code == 2
    assert "Enumeration value 'days'" in str(e)
    e = _create_error(db, timeseries={"timeField": "t", "other": 1})
    assert e.code == 40415
    assert "'create.timeseries.other' is an unknown field" in str(e)
    e = _create_error(db, timeseries={"timeField": 5})
    assert e.code == 14
    e = _create_error(db, timeseries={"timeField": "t"}, capped=True, size=4096)
    assert e.code == 72
    assert "'timeseries' is not allowed with 'capped'" in str(e)
    e = _create_error(db, timeseries={"timeField": "t"}, validator={"x": 1})
    assert e.code == 72
    assert "'timeseries' is not allowed with 'validator'" in str(e)
    assert "bad" not in db.list_collection_names()


# -- listCollections --------------------------------------------------------

def test_list_collections_shows_the_buckets_collection(db):
    _readings(db)
    db.plain.insert_one({"_id": 1})
    infos = _infos(db)
    b = infos["system.buckets.readings"]
    assert b["type"] == "collection"
    assert b["options"]["clusteredIndex"] is True
    assert b["options"]["timeseries"] == infos["readings"]["options"]["timeseries"]
    assert b["info"]["readOnly"] is False
    assert "uuid" in b["info"]
    assert "idIndex" not in b
    # nameOnly: name and type only, filters match that
    got = {i["name"]: i for i in db.list_collections(nameOnly=True)}
    assert got["readings"] == {"name": "readings", "type": "timeseries"}
    assert got["system.buckets.readings"] == {"name": "system.buckets.readings",
                                              "type": "collection"}
    # the filter qleaf_fdw's IMPORT FOREIGN SCHEMA sends: the time series
    # collection is out, its buckets collection in (a system.* name)
    names = {i["name"] for i in db.list_collections(filter={"type": "collection"},
                                                    nameOnly=True)}
    assert "readings" not in names
    assert {"plain", "system.buckets.readings"} <= names
    assert db.list_collection_names(filter={"type": "timeseries"}) == ["readings"]
    names = db.list_collection_names(filter={"name": "system.buckets.readings"})
    assert names == ["system.buckets.readings"]
    # authorizedCollections (a user with privileges on the database sees both)
    reply = db.command("listCollections", nameOnly=True, authorizedCollections=True)
    names = {i["name"] for i in reply["cursor"]["firstBatch"]}
    assert {"readings", "system.buckets.readings"} <= names


def test_indexes(db):
    if _version(db.client) < (6, 3) and db.client.server_info().get("gitVersion") \
            != "0" * 40:
        pytest.skip("the default metaField/timeField index came in MongoDB 6.3")
    _readings(db)
    db.command("create", "nometa", timeseries={"timeField": "t"})
    # no _id index; with a metaField, one on it and the time field
    got = [(i["name"], dict(i["key"])) for i in db.readings.list_indexes()]
    assert got == [("meta_1_t_1", {"meta": 1, "t": 1})]
    assert list(db.nometa.list_indexes()) == []


# -- inserts and reads ------------------------------------------------------

def test_insert_needs_a_date_in_the_time_field(db):
    _readings(db)
    with pytest.raises(BulkWriteError) as e:
        db.readings.insert_many([{"_id": 5, "t": _t(20), "temp": 1.0},
                                 {"_id": 6, "temp": 2.0},
                                 {"_id": 7, "t": "2024-03-01", "temp": 3.0}],
                                ordered=False)
    errs = e.value.details["writeErrors"]
    assert [w["index"] for w in errs] == [1, 2]
    assert all(w["code"] == 2 for w in errs)
    assert all("'t' must be present and contain a valid BSON UTC datetime value"
               in w["errmsg"] for w in errs)
    assert e.value.details["nInserted"] == 1
    assert db.readings.count_documents({}) == 5


def test_reads_see_the_measurements(db):
    _readings(db)
    got = list(db.readings.find({"meta.sensor": "a"}, sort=[("t", 1)]))
    assert [d["_id"] for d in got] == [1, 3]
    assert got[0]["t"] == _t(0) and got[0]["meta"] == {"sensor": "a", "site": 1}
    assert got[0]["temp"] == 20.5
    got = list(db.readings.find({"t": {"$gte": _t(5), "$lt": _t(15)}}, sort=[("_id", 1)]))
    assert [d["_id"] for d in got] == [2, 3]
    got = list(db.readings.aggregate([{"$match": {"meta.site": 1}},
                                      {"$group": {"_id": "$meta.sensor",
                                                  "n": {"$sum": 1}}},
                                      {"$sort": {"_id": 1}}]))
    assert got == [{"_id": "a", "n": 2}, {"_id": "b", "n": 1}]
    assert db.readings.count_documents({"temp": {"$lt": 19}}) == 2


# -- updates, deletes, findAndModify ----------------------------------------

def _rules_of_60_70(db):
    # arbitrary updates (and findAndModify) on time series came after 7.0
    if _version(db.client) not in ((6, 0), (7, 0)):
        pytest.skip("the update rules tested are MongoDB 6.0's and 7.0's")


def _update_error(coll, q, u, **kw):
    with pytest.raises(WriteError) as e:
        coll.update_many(q, u, **kw)
    return e.value


def test_update_rules(db):
    _rules_of_60_70(db)
    _readings(db)
    r = db.readings.update_many({"meta.sensor": "a"}, {"$set": {"meta.site": 3}})
    assert r.matched_count == 2
    assert db.readings.count_documents({"meta.site": 3}) == 2
    e = _update_error(db.readings, {"temp": 20.5}, {"$set": {"meta.site": 4}})
    assert e.code == 72
    assert "when querying on a field that is not the metaField 'meta'" in str(e)
    e = _update_error(db.readings, {"meta.sensor": "a"}, {"$set": {"temp": 0}})
    assert e.code == 72
    assert "which updates a field that is not the metaField 'meta'" in str(e)
    e = _update_error(db.readings, {"meta.sensor": "a"}, {"$set": {"meta.site": 5}},
                      upsert=True)
    assert e.code == 72
    assert "Cannot perform an upsert on a time-series collection" in str(e)
    with pytest.raises(WriteError) as e:
        db.readings.update_one({"meta.sensor": "a"}, {"$set": {"meta.site": 5}})
    assert e.value.code == 72
    assert "Cannot perform a non-multi update on a time-series collection" in str(e.value)
    assert db.readings.count_documents({"meta.site": 5}) == 0


def test_update_without_meta_field(db):
    _rules_of_60_70(db)
    db.command("create", "nometa", timeseries={"timeField": "t"})
    db.nometa.insert_one({"t": T0, "v": 1})
    e = _update_error(db.nometa, {}, {"$set": {"v": 2}})
    assert e.code == 72
    assert "does not have a metaField" in str(e)


def test_deletes(db):
    if _version(db.client) < (7, 0) and db.client.server_info().get("gitVersion") \
            != "0" * 40:
        pytest.skip("deletes on any field and deleteOne need MongoDB 7.0")
    _readings(db)
    assert db.readings.delete_one({"_id": 1}).deleted_count == 1
    assert db.readings.delete_many({"temp": {"$lt": 18.5}}).deleted_count == 2
    assert [d["_id"] for d in db.readings.find()] == [3]


def test_find_and_modify_is_refused(db):
    _rules_of_60_70(db)
    _readings(db)
    with pytest.raises(OperationFailure) as e:
        db.readings.find_one_and_update({"_id": 1}, {"$set": {"temp": 0}})
    assert e.value.code == 166
    assert "lock for timeseries is not allowed" in str(e.value)
    with pytest.raises(OperationFailure) as e:
        db.readings.find_one_and_delete({"_id": 1})
    assert e.value.code == 166
    assert db.readings.count_documents({}) == 4


# -- change streams, transactions, drop -------------------------------------

def test_change_stream_is_refused(db):
    _readings(db)
    with pytest.raises(OperationFailure) as e:
        db.readings.watch()
    assert e.value.code == 166
    assert "Namespace %s.readings is a timeseries collection" % db.name in str(e.value)


def test_database_stream_does_not_show_measurements(db):
    db.plain.insert_one({"_id": 0})
    with db.watch(max_await_time_ms=200) as stream:
        _readings(db)
        db.plain.insert_one({"_id": 1})
        ev = stream.next()
        assert ev["ns"]["coll"] == "plain"
        assert ev["documentKey"] == {"_id": 1}


def test_insert_in_a_transaction_is_refused(db, client):
    _readings(db)
    with client.start_session() as s:
        with pytest.raises(OperationFailure) as e:
            with s.start_transaction():
                db.readings.insert_one({"t": T0, "temp": 1.0}, session=s)
    assert e.value.code == 263
    assert "Cannot insert into a time-series collection in a multi-document " \
           "transaction: %s.readings" % db.name in str(e.value)
    assert db.readings.count_documents({}) == 4


def test_drop_removes_both(db):
    _readings(db)
    db.readings.drop()
    names = db.list_collection_names()
    assert "readings" not in names
    assert "system.buckets.readings" not in names
    # the name is free again, for a plain collection
    db.readings.insert_one({"_id": 1})
    assert _infos(db)["readings"]["type"] == "collection"


@pytest.mark.standin_only
def test_buckets_collection_is_not_kept(db):
    _readings(db)
    with pytest.raises(OperationFailure) as e:
        db["system.buckets.readings"].find_one()
    assert e.value.code == 238


@pytest.mark.standin_only
def test_time_series_survives_restart(standin):
    server = standin(dbpath=True)
    c = server.client()
    db = c.tsdb
    _readings(db)
    c.close()
    server.kill9()
    server.restart()
    c = server.client()
    info = {i["name"]: i for i in c.tsdb.list_collections()}
    assert info["readings"]["type"] == "timeseries"
    assert c.tsdb.readings.count_documents({}) == 4
    with pytest.raises(OperationFailure) as e:
        c.tsdb.readings.watch()
    assert e.value.code == 166
    c.close()
