"""The official Python client (pip package `aerospike`) against the testkit node.

Run by the Rust test suite (tests/tests/it/node_python.rs), which starts the node:

    python3 node_client_check.py --hosts 127.0.0.1:3000[,127.0.0.1:3001] \
        [--user U --password P] [--nodes N] [--udf-dir DIR]
        [--tls-cafile CA [--tls-certfile CERT --tls-keyfile KEY]] [--auth-mode internal|external|pki]

With TLS, hosts are 127.0.0.1:<tls name>:<port>.

Exits non-zero on the first failed check; a missing `aerospike` package is a failure.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

# meta["ttl"] is deprecated in client 19 but is what backup tools read.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--tls-cafile")
    ap.add_argument("--tls-certfile")
    ap.add_argument("--tls-keyfile")
    ap.add_argument("--auth-mode", choices=["internal", "external", "pki"], default="internal")
    args = ap.parse_args()

    try:
        import aerospike
        from aerospike import exception as ex
    except ImportError as e:
        print(f"FAIL: the aerospike package is not installed ({e}); pip install aerospike")
        return 2

    hosts = []
    for h in args.hosts.split(","):
        parts = h.split(":")
        if len(parts) == 3:
            hosts.append((parts[0], int(parts[2]), parts[1]))
        else:
            hosts.append((parts[0], int(parts[1])))
    # The client copies UDF files into its Lua user path: keep that out of the work tree.
    lua_dir = tempfile.mkdtemp(prefix="testkit-lua-")
    config = {
        "hosts": hosts[:1],
        "policies": {"total_timeout": 5000},
        "lua": {"user_path": lua_dir},
    }
    if args.tls_cafile:
        tls = {"enable": True, "cafile": args.tls_cafile}
        if args.tls_certfile:
            tls["certfile"] = args.tls_certfile
            tls["keyfile"] = args.tls_keyfile
        config["tls"] = tls
    modes = {
        "internal": aerospike.AUTH_INTERNAL,
        "external": aerospike.AUTH_EXTERNAL,
        "pki": aerospike.AUTH_PKI,
    }
    config["policies"]["auth_mode"] = modes[args.auth_mode]

    if args.auth_mode == "pki":
        # The user is the certificate's CN; the login carries no user and no password.
        pass
    elif args.user:
        bad = dict(config, user=args.user, password=args.password + "-wrong")
        try:
            c = aerospike.client(bad)
            c.connect()
            raise AssertionError("a wrong password must not connect")
        except ex.AerospikeError as e:
            # The server's INVALID_CREDENTIAL (65) or the client's wrap of it.
            assert e.code in (65, -10, 62), f"unexpected code for a wrong password: {e.code} {e}"
            print(f"ok: wrong password rejected with code {e.code}")
        config["user"] = args.user
        config["password"] = args.password

    client = aerospike.client(config)
    if not client.is_connected():
        client.connect()
    checks = [
        check_info,
        check_types_and_meta,
        check_error_codes,
        check_operate,
        check_batch,
        check_scan_and_expressions,
        check_index_query,
        check_udf,
        check_truncate,
        check_restore_writes,
        check_restore_ttl,
        check_restore_batch,
        check_restore_cdt,
        check_restore_sindex_udf,
    ]
    for check in checks:
        check(client, aerospike, ex, args)
        print(f"ok: {check.__name__}")
    if args.nodes > 1:
        nodes = client.get_nodes()
        assert len(nodes) == args.nodes, f"client sees {len(nodes)} nodes, expected {args.nodes}"
        print(f"ok: client sees {len(nodes)} nodes")
    client.close()
    shutil.rmtree(lua_dir, ignore_errors=True)
    print("ALL PYTHON CHECKS PASSED")
    return 0


NS = "test"


def check_info(client, aerospike, ex, args):
    res = client.info_all("build")
    assert len(res) == args.nodes, res
    for node, (err, resp) in res.items():
        assert err is None, (node, err)
        assert "8.1.2.0" in resp, resp
    ns = client.info_random_node("namespaces")
    assert "test" in ns, ns


def check_types_and_meta(client, aerospike, ex, args):
    key = (NS, "py_types", "k1")
    bins = {
        "int": 7,
        "float": 1.25,
        "str": "héllo",
        "bytes": bytearray(b"\x00\x01\xff"),
        "bool": True,
        "list": [1, "two", 3.0],
        "map": {"a": 1, "b": [1, 2]},
        "geo": aerospike.GeoJSON({"type": "Point", "coordinates": [-122.0, 37.5]}),
    }
    client.put(key, bins, policy={"key": aerospike.POLICY_KEY_SEND})
    (k, meta, got) = client.get(key)
    assert meta["gen"] == 1, meta
    assert got["int"] == 7 and got["float"] == 1.25 and got["str"] == "héllo", got
    assert bytes(got["bytes"]) == b"\x00\x01\xff", got
    assert got["bool"] is True or got["bool"] == 1, got
    assert got["list"] == [1, "two", 3.0], got
    assert got["map"] == {"a": 1, "b": [1, 2]}, got
    assert got["geo"].unwrap()["coordinates"] == [-122.0, 37.5], got["geo"]
    # Never-expire reads back as the maximum TTL, as with a real server.
    assert meta["ttl"] in (0xFFFFFFFF, -1), meta

    client.put(key, {"int": 8}, meta={"ttl": 3600})
    (_, meta, _) = client.get(key)
    assert 3590 <= meta["ttl"] <= 3600, meta
    assert meta["gen"] == 2
    (_, meta) = client.exists(key)
    assert meta is not None and meta["gen"] == 2
    client.touch(key)
    (_, meta) = client.exists(key)
    assert meta["gen"] == 3, meta


def expect(code_cls, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except code_cls as e:
        return e
    raise AssertionError(f"{fn.__name__} should raise {code_cls.__name__}")


def check_error_codes(client, aerospike, ex, args):
    key = (NS, "py_err", 1)
    client.put(key, {"a": 1})
    e = expect(ex.RecordExistsError, client.put, key, {"a": 2},
               policy={"exists": aerospike.POLICY_EXISTS_CREATE})
    assert e.code == 5
    e = expect(ex.RecordGenerationError, client.put, key, {"a": 3}, meta={"gen": 99},
               policy={"gen": aerospike.POLICY_GEN_EQ})
    assert e.code == 3
    client.put(key, {"a": 3}, meta={"gen": 1}, policy={"gen": aerospike.POLICY_GEN_EQ})
    e = expect(ex.RecordGenerationError, client.put, key, {"a": 4}, meta={"gen": 2},
               policy={"gen": aerospike.POLICY_GEN_GT})
    missing = (NS, "py_err", 2)
    e = expect(ex.RecordNotFound, client.get, missing)
    assert e.code == 2
    e = expect(ex.RecordNotFound, client.put, missing, {"a": 1},
               policy={"exists": aerospike.POLICY_EXISTS_UPDATE})
    e = expect(ex.RecordNotFound, client.remove, missing)
    e = expect(ex.NamespaceNotFound, client.put, ("nope", "s", 1), {"a": 1})
    assert e.code == 20
    client.put(key, {"s": "str"})
    e = expect(ex.BinIncompatibleType, client.increment, key, "s", 1)
    assert e.code == 12
    client.remove(key)
    expect(ex.RecordNotFound, client.get, key)


def check_operate(client, aerospike, ex, args):
    from aerospike_helpers.operations import operations as op
    key = (NS, "py_ops", 1)
    client.put(key, {"n": 1, "s": "a"})
    _, meta, bins = client.operate(key, [op.increment("n", 4), op.append("s", "b"),
                                         op.read("n"), op.read("s")])
    assert bins == {"n": 5, "s": "ab"}, bins
    assert meta["gen"] == 2


def check_batch(client, aerospike, ex, args):
    from aerospike_helpers.batch import records as br
    from aerospike_helpers.operations import operations as op
    keys = [(NS, "py_batch", i) for i in range(20)]
    writes = br.BatchRecords([br.Write(k, [op.write("v", i)]) for i, k in enumerate(keys)])
    res = client.batch_write(writes)
    assert res.result == 0, res.result
    assert all(r.result == 0 for r in res.batch_records)
    create_only = br.BatchRecords([
        br.Write(keys[0], [op.write("v", 100)], policy={"exists": aerospike.POLICY_EXISTS_CREATE})
    ])
    res = client.batch_write(create_only)
    assert res.batch_records[0].result == 5, res.batch_records[0].result
    reads = client.batch_read(keys + [(NS, "py_batch", 999)])
    got = [r.record[2]["v"] if r.result == 0 else None for r in reads.batch_records]
    assert got[:20] == list(range(20)), got
    assert reads.batch_records[20].result == 2
    assert got[20] is None


def check_scan_and_expressions(client, aerospike, ex, args):
    from aerospike_helpers import expressions as exp
    s = "py_scan"
    # Records written in two rounds, at least 2 ms apart, so a LUT window separates them.
    for i in range(60):
        client.put((NS, s, i), {"i": i, "name": f"n{i}"}, policy={"key": aerospike.POLICY_KEY_SEND})
    time.sleep(0.01)
    t_mid = time.time_ns()
    time.sleep(0.01)
    for i in range(60, 100):
        client.put((NS, s, i), {"i": i, "name": f"n{i}"}, policy={"key": aerospike.POLICY_KEY_SEND})

    q = client.query(NS, s)
    recs = q.results({"partition_filter": {"begin": 0, "count": 4096}})
    assert len(recs) == 100, len(recs)
    assert all(r[0][2] is not None for r in recs), "user keys come back"

    newer = exp.GE(exp.LastUpdateTime(), t_mid).compile()
    q = client.query(NS, s)
    recs = q.results({"expressions": newer})
    assert sorted(r[2]["i"] for r in recs) == list(range(60, 100))

    total = 0
    for begin, count in ((0, 1000), (1000, 1000), (2000, 2096)):
        q = client.query(NS, s)
        total += len(q.results({"partition_filter": {"begin": begin, "count": count},
                                "expressions": newer}))
    assert total == 40, total

    q = client.query(NS, s)
    q.select("name")
    recs = q.results({"expressions": exp.LT(exp.IntBin("i"), 10).compile()})
    assert len(recs) == 10 and all(set(r[2]) == {"name"} for r in recs), recs[:2]

    q = client.query(NS, s)
    q.max_records = 30
    recs = q.results({"partition_filter": {"begin": 0, "count": 4096}})
    assert 0 < len(recs) <= 30, len(recs)

    # Paginated partition query (what asbackup-style tools do): digest resume, no duplicates.
    q = client.query(NS, s)
    q.max_records = 15
    q.paginate()
    seen = set()
    pages = 0
    while not q.is_done() and pages < 50:
        page = q.results({"partition_filter": {"begin": 0, "count": 4096}})
        for r in page:
            d = bytes(r[0][3])
            assert d not in seen, "duplicate record across pages"
            seen.add(d)
        pages += 1
    assert len(seen) == 100 and pages >= 7, (len(seen), pages)

    q = client.scan(NS, s) if hasattr(client, "scan") else client.query(NS, s)
    n = [0]
    q.foreach(lambda rec: n.__setitem__(0, n[0] + 1))
    assert n[0] == 100, n[0]


def check_index_query(client, aerospike, ex, args):
    from aerospike import predicates as p
    s = "py_idx"
    for i in range(30):
        client.put((NS, s, i), {"age": i})
    client.index_integer_create(NS, s, "age", "py_age_idx")
    q = client.query(NS, s)
    q.where(p.between("age", 5, 9))
    ages = sorted(r[2]["age"] for r in q.results())
    assert ages == [5, 6, 7, 8, 9], ages
    listing = client.info_random_node(f"sindex-list:ns={NS}")
    assert "indexname=py_age_idx" in listing, listing
    client.index_remove(NS, "py_age_idx")
    try:
        client.index_remove(NS, "py_age_idx")
    except ex.IndexNotFound as e:
        assert e.code == 201
    except ex.AerospikeError as e:
        raise AssertionError(f"dropping a missing index: {e.code} {e}")


def check_udf(client, aerospike, ex, args):
    body = b"function hello(rec)\n  return 'hi'\nend\n"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "py_hello.lua")
        with open(path, "wb") as f:
            f.write(body)
        client.udf_put(path)
    mods = client.udf_list()
    names = [m["name"] for m in mods]
    assert "py_hello.lua" in names, mods
    content = client.udf_get("py_hello.lua")
    assert content.encode() == body if isinstance(content, str) else content == body, content
    client.udf_remove("py_hello.lua")
    assert "py_hello.lua" not in [m["name"] for m in client.udf_list()]


def check_truncate(client, aerospike, ex, args):
    s = "py_trunc"
    for i in range(10):
        client.put((NS, s, i), {"a": i})
    client.truncate(NS, s, 0)
    expect(ex.RecordNotFound, client.get, (NS, s, 3))
    client.put((NS, s, 3), {"a": 3})
    client.get((NS, s, 3))
    future = time.time_ns() + 3600 * 10**9
    e = expect(ex.AerospikeError, client.truncate, NS, s, future)
    assert e.code == 4, e.code


# ---- what a restore relies on (the Rust runner checks some results in the node's store) ----

def objects(client, ns=NS):
    total = 0
    for _node, (err, resp) in client.info_all(f"namespace/{ns}").items():
        assert err is None, err
        stats = dict(kv.split("=", 1) for kv in resp.strip().split("\t")[-1].split(";") if "=" in kv)
        total += int(stats["master_objects"])
    return total


def check_restore_writes(client, aerospike, ex, args):
    s = "py_rw"
    gt = {"gen": aerospike.POLICY_GEN_GT}
    # A missing record has generation 0: expect-gen-greater 0 fails, anything above creates.
    e = expect(ex.RecordGenerationError, client.put, (NS, s, 1), {"a": 1}, meta={"gen": 0}, policy=gt)
    assert e.code == 3
    client.put((NS, s, 1), {"a": 1, "b": 2}, meta={"gen": 5}, policy=gt)
    (_, meta, _) = client.get((NS, s, 1))
    assert meta["gen"] == 1, meta
    client.put((NS, s, 1), {"a": 2}, meta={"gen": 2}, policy=gt)
    (_, meta, bins) = client.get((NS, s, 1))
    assert meta["gen"] == 2 and bins == {"a": 2, "b": 2}, (meta, bins)
    e = expect(ex.RecordGenerationError, client.put, (NS, s, 1), {"a": 3}, meta={"gen": 2}, policy=gt)
    # Replace drops the bins not sent. (C client names: EXISTS_REPLACE is replace-only,
    # EXISTS_UPDATE update-only, EXISTS_IGNORE the default create-or-update.)
    client.put((NS, s, 1), {"c": 3}, policy={"exists": aerospike.POLICY_EXISTS_CREATE_OR_REPLACE})
    (_, meta, bins) = client.get((NS, s, 1))
    assert bins == {"c": 3} and meta["gen"] == 3, (meta, bins)
    for action in (aerospike.POLICY_EXISTS_REPLACE, aerospike.POLICY_EXISTS_UPDATE):
        expect(ex.RecordNotFound, client.put, (NS, s, 2), {"a": 1}, policy={"exists": action})
    e = expect(ex.RecordExistsError, client.put, (NS, s, 1), {"a": 1},
               policy={"exists": aerospike.POLICY_EXISTS_CREATE})
    assert e.code == 5
    # Writing only bin deletes to a missing record is "not found".
    expect(ex.RecordNotFound, client.put, (NS, s, 3), {"a": aerospike.null()})


def check_restore_ttl(client, aerospike, ex, args):
    s = "py_ttl"
    client.put((NS, s, 1), {"a": 1}, meta={"ttl": 1000})
    (_, meta, _) = client.get((NS, s, 1))
    assert 990 <= meta["ttl"] <= 1000, meta
    client.put((NS, s, 1), {"a": 2}, meta={"ttl": aerospike.TTL_DONT_UPDATE})
    (_, meta2, _) = client.get((NS, s, 1))
    assert abs(meta2["ttl"] - meta["ttl"]) <= 1, (meta, meta2)
    client.put((NS, s, 1), {"a": 3}, meta={"ttl": aerospike.TTL_NEVER_EXPIRE})
    (_, meta, _) = client.get((NS, s, 1))
    assert meta["ttl"] in (0xFFFFFFFF, -1), meta
    # The node's namespace default is 0 (never expire), as the runner starts it.
    client.put((NS, s, 2), {"a": 1}, meta={"ttl": aerospike.TTL_NAMESPACE_DEFAULT})
    (_, meta, _) = client.get((NS, s, 2))
    assert meta["ttl"] in (0xFFFFFFFF, -1), meta
    e = expect(ex.AerospikeError, client.put, (NS, s, 3), {"a": 1}, meta={"ttl": 10 * 365 * 86400 + 1})
    assert e.code == 4, e.code


def check_restore_batch(client, aerospike, ex, args):
    from aerospike_helpers.batch import records as br
    from aerospike_helpers.operations import operations as op
    s = "py_rb"
    client.put((NS, s, 0), {"v": 0})
    client.put((NS, s, 0), {"v": 0})  # generation 2
    client.put((NS, s, 1), {"v": 1})
    before = objects(client)
    gt = {"gen": aerospike.POLICY_GEN_GT}
    rows = br.BatchRecords([
        br.Write((NS, s, 0), [op.write("v", 10)], meta={"gen": 2, "ttl": 500}, policy=gt),
        br.Write((NS, s, 0), [op.write("v", 11)], meta={"gen": 3, "ttl": 500}, policy=gt),
        br.Write((NS, s, 1), [op.write("v", 12)], policy={"exists": aerospike.POLICY_EXISTS_CREATE}),
        br.Write((NS, s, 2), [op.write("v", 13)], policy={"exists": aerospike.POLICY_EXISTS_UPDATE}),
        br.Write((NS, s, 3), [op.write("v", 14)],
                 policy={"exists": aerospike.POLICY_EXISTS_CREATE_OR_REPLACE}),
    ])
    res = client.batch_write(rows)
    codes = [r.result for r in res.batch_records]
    assert codes == [3, 0, 5, 2, 0], codes
    (_, meta, bins) = client.get((NS, s, 0))
    assert bins == {"v": 11} and meta["gen"] == 3 and 490 <= meta["ttl"] <= 500, (meta, bins)
    assert client.get((NS, s, 1))[2] == {"v": 1}
    assert objects(client) == before + 1, (objects(client), before)


def check_restore_cdt(client, aerospike, ex, args):
    # Read back by the Rust runner from the node's store: the flag byte must be there.
    key = (NS, "py_cdt", 1)
    client.put(key, {"km": aerospike.KeyOrderedDict({"b": 1, "a": 2}),
                     "um": {"b": 1, "a": 2}, "l": [3, 1, 2]})
    (_, _, bins) = client.get(key)
    assert list(bins["km"].keys()) == ["a", "b"], bins
    assert isinstance(bins["km"], aerospike.KeyOrderedDict) or dict(bins["km"]) == {"a": 2, "b": 1}, bins
    assert list(bins["um"].keys()) == ["a", "b"], "unordered maps come back key-sorted"
    assert bins["l"] == [3, 1, 2], bins


def check_restore_sindex_udf(client, aerospike, ex, args):
    old = "sindex-create:ns=test;set=py_six;indexname=py_old;indexdata=n,numeric"
    resp = client.info_random_node(old)
    assert resp.strip().endswith("ok"), resp
    listing = client.info_random_node("sindex-list:ns=test")
    assert "indexname=py_old:set=py_six:bin=n:type=numeric" in listing, listing
    client.index_string_create(NS, "py_six", "name", "py_new")
    listing = client.info_random_node("sindex-list:ns=test")
    assert "indexname=py_new:set=py_six:bin=name:type=string" in listing, listing
    client.index_remove(NS, "py_old")
    client.index_remove(NS, "py_new")
    # Dropping again is not an error on an 8.1 server.
    client.index_remove(NS, "py_new")
    body = b"function g(rec) return 2 end\n"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "py_restored.lua")
        with open(path, "wb") as f:
            f.write(body)
        client.udf_put(path)
    assert "py_restored.lua" in [m["name"] for m in client.udf_list()]
    client.udf_remove("py_restored.lua")
    assert "py_restored.lua" not in [m["name"] for m in client.udf_list()]


if __name__ == "__main__":
    sys.exit(main())
