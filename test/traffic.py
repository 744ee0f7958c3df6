#!/usr/bin/python3
"""Live traffic for the event-driven shop: the writes its services make.

    test/traffic.py [--db NAME] [--seed N] [--events N] [--rate R]
                    [--anchor ISO] [--setup] [--print-start] [--plan] [--quiet]

Writes to the MongoDB in QLEAF_MONGODB_URI (or --uri), database "shop" by
default, what the seed scenario's services write, one document change per
write (so --events N writes are N change events):

  user_activities  sessions: login, page_view / click / add_to_cart steps a
                   few seconds apart, sometimes subscription_change, then a
                   purchase or not, and logout ({user_id, session_id,
                   activity_type, status, activity_data {device, page, ...},
                   created_at}, as test/fixtures/shop.py writes them)
  user_aggregates  one event-sourced aggregate per user: inserted at the
                   user's first login (version 1), then every change sets
                   fields and increments version (subscription_status,
                   total_orders, lifetime_value, preferences)
  orders,          a purchase creates an order, an order_created event and a
  order_events,    checkout saga; the saga reserves stock, charges payment,
  sagas            creates the shipment and ends delivered; payments fail
                   sometimes (the saga compensates: stock released, order
                   cancelled), shipments fail more rarely (the saga stays
                   failed), an order whose stock is short is cancelled
  inventory        stockLevel decrements as orders reserve stock, increments
                   as failed orders release it and as the warehouse restocks
                   products at or below their reorderLevel; price changes
                   that leave the stock alone

Everything follows from the seed and the database's state at the start (the
stock levels of inventory, the users in user_aggregates): the same seed on the
same state makes the same writes in the same order with the same document
times.  Document times come from a simulated clock (sessions and sagas take
minutes); the first write is at --anchor, or by default the run is placed so
that its last write is at the current second.  --rate only paces the real
writes (per second; 0, the default, is as fast as the server takes them).

  --setup        (re)create the database first: the collections (inventory
                 with changeStreamPreAndPostImages) and a 12-product catalog
                 with small stock levels, so alerts come quickly
  --print-start  print the server's operation time before the first write
                 as one number (seconds * 2^32 + increment, the form of a
                 changes table's cluster_timestamp) and nothing else
  --plan         print the writes as JSON lines instead of making them
                 (reads the starting state from the server all the same)
  --quiet        no summary at the end

Orders are named ORD-<seed>-<n>: a second run with the same seed on the same
database stops before its first write; use another seed or reload.
"""
import argparse
import datetime
import heapq
import os
import struct
import sys
import time
from decimal import Decimal

import pymongo
from bson import json_util
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

N_USERS = 400
FIRST_USER = 100000
DEVICES = ["web", "ios", "android"]
PAGES = ["/", "/deals", "/cart", "/account", "/search", "/category/audio",
         "/category/home", "/category/outdoor", "/category/books",
         "/help"]
PLANS = ["free", "plus", "premium"]
FIRST_NAMES = ["Ada", "Bruno", "Chloé", "Dario", "Eva", "Filip", "Greta",
               "Hugo", "Ines", "Jonas", "Katja", "Luca", "Marta", "Nils"]
LAST_NAMES = ["Almeida", "Berg", "Costa", "Dubois", "Eriksen", "Fischer",
              "García", "Horvat", "Jansen", "Kowalski", "Moreau", "Rossi"]
SAGA_STEPS = ["reserve_stock", "charge_payment", "create_shipment",
              "notify_customer"]

# The small catalog of --setup: (name, category, stock, reorder level, price)
CATALOG = [
    ("Studio Headphones", "audio", 14, 5, "149.00"),
    ("Travel Speaker", "audio", 8, 5, "79.00"),
    ("Eco Earbuds", "audio", 3, 4, "49.90"),
    ("Pro Keyboard", "computing", 25, 10, "99.99"),
    ("Compact Mouse", "computing", 30, 10, "29.00"),
    ("Ultra USB-C Hub", "computing", 0, 5, "49.90"),
    ("Classic Kettle", "home", 12, 5, "49.90"),
    ("Mini Lamp", "home", 6, 3, "19.99"),
    ("Coffee Grinder", "home", 9, 4, "79.00"),
    ("Trail Backpack", "outdoor", 11, 4, "99.99"),
    ("Field Guide", "books", 20, 5, "14.50"),
    ("Atlas", "books", 2, 3, "29.00"),
]


def _ms(when):
    return when.replace(microsecond=(when.microsecond // 1000) * 1000)


def _money(value):
    return Decimal128(Decimal(value).quantize(Decimal("0.01")))


def setup(db):
    """(Re)create the traffic's collections with the small catalog."""
    db.client.drop_database(db.name)
    db.command({"create": "inventory",
                "changeStreamPreAndPostImages": {"enabled": True}})
    for name in ("user_activities", "user_aggregates", "orders",
                 "order_events", "sagas"):
        db.command({"create": name})
    t = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    db.inventory.insert_many([{
        "_id": "SKU-%04d" % (i + 1), "name": name, "category": category,
        "warehouse": ["north", "south"][i % 2], "itemType": "product",
        "stockLevel": stock, "reorderLevel": reorder, "price": _money(price),
        "tags": [], "updated_at": t,
    } for i, (name, category, stock, reorder, price) in enumerate(CATALOG)])


class Shop:
    """The simulated services.  Events are (sim seconds, seq, action, args)
    in a heap; each action appends writes to self.writes and may schedule
    more actions.  The simulation stops once enough writes are planned."""

    def __init__(self, rnd, seed, products, users):
        self.rnd = rnd
        self.seed = seed
        # sku -> [stock, reorder level, price (Decimal), name]
        self.stock = {p["_id"]: [p.get("stockLevel", 0),
                                 p.get("reorderLevel", 0),
                                 p["price"].to_decimal()
                                 if isinstance(p.get("price"), Decimal128)
                                 else Decimal(str(p.get("price", 10))),
                                 p.get("name")]
                      for p in products}
        self.skus = sorted(self.stock)
        # A few products sell far more than the rest.
        self.weights = [1.0 / (1 + (i * 7919) % len(self.skus))
                        for i in range(len(self.skus))]
        self.users = dict(users)        # user_id -> version
        self.writes = []                # (t, collection, op, arg1, arg2)
        self.heap = []
        self.seq = 0
        self.n_sessions = 0
        self.n_orders = 0
        self.restocking = set()
        self.n_ids = 0

    def at(self, t, action, *args):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, action, args))

    def oid(self, t):
        """An ObjectId for a new event document: its time is filled in with
        the document time (see _stamp), the rest is the seed and a counter,
        so ids are the same on every run and differ between seeds."""
        self.n_ids += 1
        return ("oid", (self.seed << 24) | self.n_ids)

    def write(self, t, coll, op, a, b=None):
        self.writes.append((t, coll, op, a, b))

    # -- users -----------------------------------------------------------
    def user_change(self, t, user, fields, inc=None):
        if user not in self.users:
            return
        self.users[user] += 1
        update = {"$set": dict(fields, updated_at=t),
                  "$inc": dict(inc or {}, version=1)}
        self.write(t, "user_aggregates", "update", {"_id": Int64(user)}, update)

    def signup(self, t, user):
        rnd = self.rnd
        first = rnd.choice(FIRST_NAMES)
        last = rnd.choice(LAST_NAMES)
        self.users[user] = 1
        self.write(t, "user_aggregates", "insert", {
            "_id": Int64(user), "version": 1,
            "email": "%s.%s.%d@example.com" % (first.lower(), last.lower(),
                                               user),
            "first_name": first, "last_name": last,
            "preferences": {"newsletter": rnd.random() < 0.4,
                            "language": rnd.choice(["en", "fr", "de", "es"])},
            "subscription_status": "free", "total_orders": 0,
            "lifetime_value": _money(0), "updated_at": t})

    # -- sessions --------------------------------------------------------
    def new_session(self, t):
        rnd = self.rnd
        self.n_sessions += 1
        user = FIRST_USER + rnd.randrange(N_USERS)
        session = {"user": user, "id": "S%d-%05d" % (self.seed,
                                                     self.n_sessions),
                   "device": rnd.choice(DEVICES), "cart": [],
                   # engaged visitors click a lot, quick ones leave soon
                   "steps": rnd.choice([1, 2, 3, 4, 6, 10, 16]),
                   "pace": rnd.choice([4, 10, 25, 60])}
        if user not in self.users:
            self.signup(t, user)
        self.activity(t, session, "login",
                      {"method": rnd.choice(["password", "sso",
                                             "magic_link"])})
        self.at(t + rnd.randint(2, session["pace"]), self.session_step,
                session)
        self.at(t + rnd.expovariate(1 / 40.0), self.new_session)

    def activity(self, t, session, kind, data):
        data = dict(data, device=session["device"])
        self.write(t, "user_activities", "insert", {
            "_id": self.oid(t),
            "user_id": Int64(session["user"]),
            "session_id": session["id"], "activity_type": kind,
            "status": "completed", "activity_data": data, "created_at": t})

    def session_step(self, t, session):
        rnd = self.rnd
        if session["steps"] > 0:
            session["steps"] -= 1
            roll = rnd.random()
            if roll < 0.40:
                self.activity(t, session, "page_view",
                              {"page": rnd.choice(PAGES),
                               "duration_ms": rnd.randint(300, 60000)})
            elif roll < 0.70:
                self.activity(t, session, "click",
                              {"page": rnd.choice(PAGES),
                               "target": rnd.choice(["banner", "product",
                                                     "filter", "review"])})
            elif roll < 0.96:
                deals = [k for k in self.skus
                         if 0 < self.stock[k][0] <= 2 * self.stock[k][1]]
                if deals and rnd.random() < 0.3:
                    # the last units are on sale: they go first
                    sku = rnd.choice(deals)
                else:
                    sku = rnd.choices(self.skus, self.weights)[0]
                session["cart"].append(sku)
                self.activity(t, session, "add_to_cart",
                              {"sku": sku,
                               "price": _money(self.stock[sku][2])})
            else:
                plan = rnd.choice(PLANS[1:])
                self.activity(t, session, "subscription_change",
                              {"plan": {"to": plan}})
                self.user_change(t, session["user"],
                                 {"subscription_status": plan})
            self.at(t + rnd.randint(2, session["pace"]), self.session_step,
                    session)
            return
        if session["cart"] and rnd.random() < 0.8:
            items = {}
            for sku in session["cart"]:
                items[sku] = items.get(sku, 0) + rnd.choice([1, 1, 2])
            order = self.new_order(t, session, items)
            self.activity(t, session, "purchase",
                          {"order_id": order["_id"],
                           "total": order["total"]})
        self.at(t + rnd.randint(1, session["pace"]), self.logout, session)

    def logout(self, t, session):
        self.activity(t, session, "logout", {})

    # -- orders and their checkout sagas ----------------------------------
    def new_order(self, t, session, items):
        self.n_orders += 1
        oid = "ORD-%d-%05d" % (self.seed, self.n_orders)
        lines = [{"sku": sku, "qty": qty,
                  "price": _money(self.stock[sku][2])}
                 for sku, qty in sorted(items.items())]
        total = sum(self.stock[s][2] * q for s, q in items.items())
        order = {"_id": oid, "customer_id": Int64(session["user"]),
                 "session_id": session["id"], "status": "pending",
                 "total": _money(total), "currency": "EUR", "created_at": t,
                 "items": lines}
        self.write(t, "orders", "insert", order)
        self.order_event(t, order, "order_created",
                         {"total": order["total"], "items": len(lines)})
        self.write(t, "sagas", "insert", {
            "_id": "saga-" + oid, "type": "checkout", "order_id": oid,
            "status": "started", "current_step": SAGA_STEPS[0],
            "steps": [{"name": s, "status": "pending", "at": None}
                      for s in SAGA_STEPS],
            "started_at": t, "updated_at": t})
        self.at(t + self.rnd.randint(1, 5), self.reserve, order)
        return order

    def order_event(self, t, order, kind, payload):
        self.write(t, "order_events", "insert", {
            "_id": self.oid(t),
            "order_id": order["_id"], "event_type": kind,
            "customer_id": order["customer_id"], "at": t,
            "payload": payload})
        status = {"payment_processed": "paid", "order_shipped": "shipped",
                  "order_delivered": "delivered",
                  "order_cancelled": "cancelled"}.get(kind)
        if status:
            self.write(t, "orders", "update", {"_id": order["_id"]},
                       {"$set": {"status": status, "updated_at": t}})

    def saga(self, t, order, fields):
        fields = dict(fields, updated_at=t)
        self.write(t, "sagas", "update", {"_id": "saga-" + order["_id"]},
                   {"$set": fields})

    def stock_change(self, t, sku, delta):
        entry = self.stock[sku]
        entry[0] += delta
        self.write(t, "inventory", "update", {"_id": sku},
                   {"$inc": {"stockLevel": delta},
                    "$set": {"updated_at": t}})
        if entry[0] <= entry[1] and sku not in self.restocking:
            # the warehouse notices and restocks some minutes later
            self.restocking.add(sku)
            self.at(t + self.rnd.randint(60, 600), self.restock, sku)

    def restock(self, t, sku):
        entry = self.stock[sku]
        self.restocking.discard(sku)
        self.stock_change(t, sku, max(entry[1], 1) * self.rnd.randint(3, 6))

    def stock_check(self, t):
        """The warehouse's periodic look at every product."""
        for sku in self.skus:
            entry = self.stock[sku]
            if entry[0] <= entry[1] and sku not in self.restocking:
                self.restocking.add(sku)
                self.at(t + self.rnd.randint(60, 600), self.restock, sku)
        self.at(t + 900, self.stock_check)

    def reprice(self, t):
        sku = self.rnd.choice(self.skus)
        entry = self.stock[sku]
        entry[2] = (entry[2] * Decimal(self.rnd.choice(["0.9", "1.1"]))
                    ).quantize(Decimal("0.01"))
        self.write(t, "inventory", "update", {"_id": sku},
                   {"$set": {"price": _money(entry[2]), "updated_at": t}})
        self.at(t + self.rnd.expovariate(1 / 400.0), self.reprice)

    def reserve(self, t, order):
        short = [i["sku"] for i in order["items"]
                 if self.stock[i["sku"]][0] < i["qty"]]
        if short:
            self.saga(t, order, {"status": "failed",
                                 "steps.0.status": "failed", "steps.0.at": t,
                                 "error": "out of stock: " + ", ".join(short)})
            self.order_event(t, order, "order_cancelled",
                             {"reason": "out_of_stock"})
            return
        for item in order["items"]:
            self.stock_change(t, item["sku"], -item["qty"])
        self.saga(t, order, {"status": "running",
                             "current_step": SAGA_STEPS[1],
                             "steps.0.status": "done", "steps.0.at": t})
        self.at(t + self.rnd.randint(2, 30), self.charge, order)

    def charge(self, t, order):
        rnd = self.rnd
        if rnd.random() < 0.12:
            self.saga(t, order, {"status": "compensating",
                                 "steps.1.status": "failed", "steps.1.at": t})
            self.at(t + rnd.randint(5, 60), self.compensate, order)
            return
        self.order_event(t, order, "payment_processed",
                         {"amount": order["total"],
                          "method": rnd.choice(["card", "paypal", "sepa"])})
        self.saga(t, order, {"current_step": SAGA_STEPS[2],
                             "steps.1.status": "done", "steps.1.at": t})
        self.at(t + rnd.randint(30, 300), self.ship, order)

    def compensate(self, t, order):
        for item in order["items"]:
            self.stock_change(t, item["sku"], item["qty"])
        self.order_event(t, order, "order_cancelled",
                         {"reason": "payment_failed"})
        self.saga(t, order, {"status": "compensated",
                             "steps.0.status": "compensated",
                             "current_step": None, "completed_at": t})

    def ship(self, t, order):
        rnd = self.rnd
        if rnd.random() < 0.05:
            self.saga(t, order, {"status": "failed",
                                 "steps.2.status": "failed", "steps.2.at": t,
                                 "error": "carrier rejected the parcel"})
            return
        self.order_event(t, order, "order_shipped",
                         {"carrier": rnd.choice(["DHL", "UPS", "La Poste"]),
                          "tracking": "TRK%08d" % rnd.randrange(10**8)})
        self.saga(t, order, {"current_step": SAGA_STEPS[3],
                             "steps.2.status": "done", "steps.2.at": t})
        self.at(t + rnd.randint(60, 600), self.deliver, order)

    def deliver(self, t, order):
        self.order_event(t, order, "order_delivered", {})
        self.saga(t, order, {"status": "completed", "current_step": None,
                             "steps.3.status": "done", "steps.3.at": t,
                             "completed_at": t})
        self.user_change(t, int(order["customer_id"]), {},
                         {"total_orders": 1,
                          "lifetime_value": order["total"]})

    def run(self, n_writes):
        self.at(0.0, self.new_session)
        self.at(30.0, self.reprice)
        self.at(60.0, self.stock_check)
        while self.heap and len(self.writes) < n_writes:
            t, _, action, args = heapq.heappop(self.heap)
            action(t, *args)
        return self.writes[:n_writes]


def plan(db, seed, n_writes, anchor):
    """The writes, with document times, as (coll, op, a, b) tuples."""
    import random

    rnd = random.Random(seed)
    products = list(db.inventory.find({}, sort=[("_id", 1)]))
    if not products:
        sys.exit("traffic.py: database \"%s\" has no inventory; load "
                 "test/fixtures/shop.py or pass --setup" % db.name)
    users = {int(u["_id"]): u.get("version", 1)
             for u in db.user_aggregates.find({}, {"version": 1})}
    shop = Shop(rnd, seed, products, users)
    raw = shop.run(n_writes)
    if not raw:
        return []
    if anchor is None:
        now = datetime.datetime.now(datetime.timezone.utc).replace(
            microsecond=0)
        anchor = now - datetime.timedelta(seconds=raw[-1][0])
    out = []
    for t, coll, op, a, b in raw:
        when = _ms(anchor + datetime.timedelta(seconds=t))
        out.append((coll, op, _stamp(a, when), _stamp(b, when)))
    return out


def _stamp(value, when):
    """Replace the simulated time (a float) by the document time, and
    ObjectId placeholders by ObjectIds of that time."""
    if isinstance(value, tuple) and value[0] == "oid":
        return ObjectId(struct.pack(">I", int(when.timestamp()))
                        + struct.pack(">Q", value[1]))
    if isinstance(value, dict):
        return {k: _stamp(v, when) for k, v in value.items()}
    if isinstance(value, list):
        return [_stamp(v, when) for v in value]
    if isinstance(value, float):
        return when
    return value


def operation_time(client):
    ts = client.admin.command("ping")["operationTime"]
    return (ts.time << 32) | ts.inc


def main():
    ap = argparse.ArgumentParser(
        description="Live traffic for the event-driven shop (see the "
                    "file's header).")
    ap.add_argument("--uri", default=os.environ.get("QLEAF_MONGODB_URI"))
    ap.add_argument("--db", default="shop")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--anchor")
    ap.add_argument("--setup", action="store_true")
    ap.add_argument("--print-start", action="store_true")
    ap.add_argument("--plan", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if not args.uri:
        sys.exit("traffic.py: no MongoDB: set QLEAF_MONGODB_URI or pass --uri")
    anchor = None
    if args.anchor:
        anchor = datetime.datetime.fromisoformat(args.anchor)
        if anchor.tzinfo is None:
            anchor = anchor.replace(tzinfo=datetime.timezone.utc)
    client = pymongo.MongoClient(args.uri, serverSelectionTimeoutMS=10000)
    try:
        db = client[args.db]
        if args.setup:
            setup(db)
        writes = plan(db, args.seed, args.events, anchor)
        if args.plan:
            for coll, op, a, b in writes:
                print(json_util.dumps([coll, op, a, b]))
            return
        if writes and db.sagas.find_one({"_id": "saga-ORD-%d-00001"
                                         % args.seed}):
            sys.exit("traffic.py: the orders of seed %d are already in "
                     "database \"%s\"; use another --seed, or reload the "
                     "database" % (args.seed, args.db))
        if args.print_start:
            print(operation_time(client), flush=True)
        counts = {}
        t0 = time.monotonic()
        for i, (coll, op, a, b) in enumerate(writes):
            if args.rate > 0:
                delay = t0 + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if op == "insert":
                db[coll].insert_one(a)
            else:
                db[coll].update_one(a, b)
            counts[(coll, op)] = counts.get((coll, op), 0) + 1
        if not (args.quiet or args.print_start):
            took = time.monotonic() - t0
            print("%d writes in %.1f s to database \"%s\" (seed %d):"
                  % (len(writes), took, args.db, args.seed))
            for (coll, op), n in sorted(counts.items()):
                print("  %-16s %-7s %5d" % (coll, op, n))
    finally:
        client.close()


if __name__ == "__main__":
    main()
