"""MDS: byte-identical to streaming's MDSWriter, read back by the real streaming library, deterministic, exactly
once."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO, compose, run_env, sample_lake_cfg
from mixlake.mds.format import ShardWriter, write_index
from mixlake.mds.write import MDSConfig, write_streams
from mixlake.tokens.tokenizer import TokenizerConfig, encode_batch, load_tokenizer

streaming = pytest.importorskip("streaming")


def _files(d):
    return {os.path.relpath(os.path.join(p, f), d): open(os.path.join(p, f), "rb").read()
            for p, _, fs in os.walk(d) for f in fs}


def _version_dir(stream) -> str:
    """The published version directory of a stream (named in its index.json basenames)."""
    index = json.load(open(os.path.join(stream, "index.json")))  # noqa: SIM115
    (version,) = {s["raw_data"]["basename"].split("/")[0] for s in index["shards"]}
    assert version.startswith("v-") and sorted(os.listdir(stream)) == sorted(["index.json", version])
    return os.path.join(stream, version)


def _own(tmp, columns, samples, **kw):
    os.makedirs(tmp, exist_ok=True)

    def sink(name, data):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)

    w = ShardWriter(columns, sink, **kw)
    for s in samples:
        w.write(s)
    write_index(tmp, w.finish())


@pytest.mark.parametrize("compression", ["zstd", None, "zstd:7"])
def test_byte_identical_to_streaming_mdswriter(tmp_path, compression):
    from streaming import MDSWriter

    rng = np.random.default_rng(0)
    cases = [
        ({"text": "str", "doc_id": "str"}, [{"text": f"document {i} " * int(rng.integers(1, 400)), "doc_id": f"d{i}"}
                                            for i in range(300)]),
        ({"tokens": "ndarray:uint16"}, [{"tokens": rng.integers(0, 50257, 2048).astype(np.uint16)}
                                        for _ in range(120)]),
        ({"tokens": "ndarray:int32"}, [{"tokens": rng.integers(0, 50257, 512).astype(np.int32)} for _ in range(50)]),
    ]
    for k, (columns, samples) in enumerate(cases):
        ref, own = tmp_path / f"ref{k}", tmp_path / f"own{k}"
        with MDSWriter(out=str(ref), columns=columns, compression=compression, hashes=["sha1", "xxh3_64"],
                       size_limit=1 << 17) as w:
            for s in samples:
                w.write(s)
        _own(str(own), columns, samples, compression=compression, hashes=["sha1", "xxh3_64"], size_limit=1 << 17)
        a, b = _files(str(ref)), _files(str(own))
        assert a.keys() == b.keys() and len(a) >= 2, (sorted(a), sorted(b))
        for name in a:
            assert a[name] == b[name], name


def test_sample_larger_than_size_limit_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="size_limit"):
        _own(str(tmp_path), {"text": "str"}, [{"text": "x" * 5000}], compression=None, size_limit=1024)


def _docs(spark, n=60, sources=("a", "b")):
    rng = np.random.default_rng(1)
    rows = []
    for s in sources:
        for i in range(n):
            words = " ".join(f"w{int(x)}" for x in rng.integers(0, 500, int(rng.integers(20, 400))))
            rows.append((f"{s}{i:04d}", s, f"Document {i} of {s}: {words}."))
    return spark.createDataFrame(rows, "doc_id string, source string, text string")


def test_tokens_streams_read_back_deterministic(spark, tmp_path):
    cfg = MDSConfig(format="tokens", max_seq_len=128, partitions=3, size_limit=1 << 16)
    tok = TokenizerConfig()
    docs = _docs(spark)
    m1 = write_streams(docs, cfg, tok, str(tmp_path / "r1"), {})
    m2 = write_streams(docs, cfg, tok, str(tmp_path / "r2"), {})
    f1, f2 = _files(str(tmp_path / "r1")), _files(str(tmp_path / "r2"))
    assert f1.keys() == f2.keys() and all(f1[k] == f2[k] for k in f1)  # byte-identical reruns
    assert sorted(m1, key=str) == sorted(m2, key=str)
    from streaming import StreamingDataset

    for source in ("a", "b"):
        d = str(tmp_path / "r1" / source)
        index = json.load(open(os.path.join(d, "index.json")))  # noqa: SIM115
        assert {s["raw_data"]["basename"].split("/")[1] for s in index["shards"]} <= {f"part-{i:05d}" for i in range(3)}
        ds = StreamingDataset(remote=d, local=str(tmp_path / "cache" / source), shuffle=False, batch_size=1)
        samples = [s["tokens"] for s in ds]
        expected = sum(r["samples"] for r in m1 if r["source"] == source)
        assert len(samples) == expected == len(ds) > 0
        assert all(len(s) == 128 and s.dtype == np.uint16 for s in samples)
    # decode part 0 of source a: the docs of that part in the seeded order, EOS-separated, remainder dropped

    from mixlake.mds.write import order_columns

    ordered = (order_columns(docs.filter("source = 'a'"), cfg, {"a": 3}, {}).filter("_part = 0")
               .orderBy("_key").select("text").collect())
    ids = [t for ids in encode_batch(tok, [r.text for r in ordered]) for t in [*ids, 50256]]
    d = os.path.join(_version_dir(tmp_path / "r1" / "a"), "part-00000")
    ds = StreamingDataset(remote=d, local=str(tmp_path / "cache" / "a0"), shuffle=False, batch_size=1)
    got = [int(t) for s in ds for t in s["tokens"]]
    assert got == ids[: len(got)] and len(ids) - len(got) < 128
    assert load_tokenizer(tok).decode(got[:50]).startswith(ordered[0].text[:20])


def test_write_mds_packs_the_tokens_stage_ids_only_when_they_were_made_from_its_input(spark, tmp_path):
    """Issue 13 item 5, tokenize once: write_mds packs ``token_ids`` when they were made from the very table version
    it writes with the same tokenizer — the same bytes as tokenizing again — and tokenizes again otherwise."""
    from mixlake.config import ConfigError
    from mixlake.delta import replace_table, table_path
    from mixlake.stages import tokens, write_mds

    lake = tmp_path / "lake"
    null_text = spark.createDataFrame([("a9999", "a", None)], "doc_id string, source string, text string")
    docs = _docs(spark).union(null_text)
    replace_table(docs, table_path(str(lake), "docs"))
    base = [f"lake={lake}", "stages=[tokens,write_mds]", "tokens.input_table=docs", "mds.input_table=docs",
            "mds.select=all", "mds.max_seq_len=128", "mds.partitions=3", "mds.size_limit=65536"]
    cfg = compose(*base)
    res = tokens.run(spark, cfg)
    stored = spark.read.format("delta").load(table_path(str(lake), "token_ids"))
    assert res.outputs["token_ids"] == 0 and stored.count() == res.records_in == 121
    rows = {r.doc_id: r for r in stored.collect()}
    texts = {r.doc_id: r.text for r in docs.collect()}
    slow = load_tokenizer(TokenizerConfig())  # one text at a time, with offsets: not the stage's code path
    expected = [slow.encode(texts[d] or "", add_special_tokens=False).ids for d in sorted(texts)]
    for d, ids in zip(sorted(texts), expected, strict=True):  # the tokenizer's ids, counts and UTF-8 bytes
        assert (rows[d].ids, rows[d].n_tokens, rows[d].n_bytes) == (ids, len(ids), len((texts[d] or "").encode()))
    counts = spark.read.format("delta").load(table_path(str(lake), "token_counts"))
    assert sorted(counts.columns) == ["doc_id", "n_bytes", "n_tokens", "source"]
    assert counts.exceptAll(stored.drop("ids")).count() == 0 == stored.drop("ids").exceptAll(counts).count()

    packed = write_mds.run(spark, cfg)
    assert packed.details["token_ids"] == "token_ids@0", packed.details
    again = write_mds.run(spark, compose(*base, "mds.token_ids=tokenize", f"mds.root={tmp_path / 'r2'}"))
    assert again.details["token_ids"].startswith("tokenized here")
    written = _files(str(lake / "mds"))
    assert written and written == _files(str(tmp_path / "r2"))  # byte-identical shards and indexes
    assert packed.details["samples"] == again.details["samples"] > 0

    replace_table(docs, table_path(str(lake), "docs"))  # the input moved on (same rows, new version): stale ids
    ids, why = tokens.stored_ids_for(spark, str(lake), "docs", 1, TokenizerConfig())
    assert ids is None and "differs in input_version" in why  # auto tokenizes (the path of the r2 run above)
    with pytest.raises(ConfigError, match=r"mds\.token_ids"):  # before anything is written
        write_mds.run(spark, compose(*base, "mds.token_ids=table", f"mds.root={tmp_path / 'r4'}"))
    assert not (tmp_path / "r4").exists()
    tokens.run(spark, cfg)  # made again from the new version: usable again
    ids, why = tokens.stored_ids_for(spark, str(lake), "docs", 1, TokenizerConfig())
    assert ids is not None and why == "token_ids@1"
    ids, why = tokens.stored_ids_for(spark, str(lake), "docs", 1, TokenizerConfig(hub="org/another"))
    assert ids is None and "differs in tokenizer" in why


def test_text_format_canonical_nodes_and_resume(spark, tmp_path):
    from streaming import StreamingDataset

    cfg = MDSConfig(format="text", partitions=2, text_columns=["doc_id"])
    write_streams(_docs(spark, 80, ("a",)), cfg, TokenizerConfig(), str(tmp_path), {})
    d = str(tmp_path / "a")

    def ids(ncn, cache, **kw):
        ds = StreamingDataset(remote=d, local=str(tmp_path / cache), shuffle=True, shuffle_seed=7, batch_size=4,
                              num_canonical_nodes=ncn, **kw)
        return ds, [s["doc_id"] for s in ds]

    _, one = ids(1, "c1")
    _, four = ids(4, "c4")
    assert sorted(one) == sorted(four) == sorted(f"a{i:04d}" for i in range(80))
    ds, _ = ids(1, "c5")
    it = iter(ds)
    first = [next(it)["doc_id"] for _ in range(30)]
    state = ds.state_dict(num_samples=30, from_beginning=False)
    ds2 = StreamingDataset(remote=d, local=str(tmp_path / "c6"), shuffle=True, shuffle_seed=7, batch_size=4,
                           num_canonical_nodes=1)
    ds2.load_state_dict(state)
    rest = [s["doc_id"] for s in ds2]
    assert sorted(first + rest) == sorted(one)


def test_empty_partition_and_empty_source(spark, tmp_path):
    cfg = MDSConfig(format="text", partitions=50)  # 3 documents, 50 parts: most parts are empty
    write_streams(_docs(spark, 3, ("a",)), cfg, TokenizerConfig(), str(tmp_path), {})
    parts = [p for p in os.listdir(_version_dir(tmp_path / "a")) if p.startswith("part-")]
    assert 1 <= len(parts) <= 3  # no directory (no empty shard) for an empty part
    short = spark.createDataFrame([("x1", "tiny", "hi")], "doc_id string, source string, text string")
    from mixlake.config import ConfigError

    with pytest.raises(ConfigError, match="tiny"):
        write_streams(short, MDSConfig(format="tokens", max_seq_len=2048), TokenizerConfig(), str(tmp_path), {})
    write_streams(short, MDSConfig(format="tokens", max_seq_len=2048, empty_source="skip"), TokenizerConfig(),
                  str(tmp_path), {})
    assert not (tmp_path / "tiny").exists()


def test_failed_first_attempt_leaves_no_orphans(spark, tmp_path):
    lake = tmp_path / "lake"
    (tmp_path / "in.jsonl").write_text("".join(
        json.dumps({"id": i, "text": f"document number {i} " * 30}) + "\n" for i in range(200)))
    base = [f"lake={lake}", "sample.enabled=false", f"+sources.s.path={tmp_path}/in.jsonl", "+sources.s.format=jsonl",
            "mds.partitions=3", "mds.max_seq_len=64"]
    session = ["spark.master=local[2,4]", "spark.conf.spark.ui.showConsoleProgress=false"]  # the subprocess's own
    p = subprocess.run([sys.executable, str(REPO / "jobs" / "pipeline.py"), *base, *session,
                        "stages=[ingest,write_mds]", "mds.fail_first_attempt_of_part=1"],
                       capture_output=True, text=True, timeout=600, env=run_env(), cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "fault injection" in p.stderr  # the first attempt really failed
    faulty = _files(str(lake / "mds"))
    assert not any("_attempts" in k or ".staging" in k for k in faulty)
    listed = {s["raw_data"]["basename"].split("/")[1] for s in
              json.load(open(lake / "mds" / "s" / "index.json"))["shards"]}  # noqa: SIM115
    assert listed == {p for p in os.listdir(_version_dir(lake / "mds" / "s")) if p.startswith("part-")}
    # the clean rerun (forced, in this process's session: its MDS bytes do not depend on the process)
    from mixlake.pipeline import run_pipeline

    run_pipeline(spark, compose(*base, "stages=[write_mds,verify_mds]", "force=true"))
    assert _files(str(lake / "mds")) == faulty  # same bytes as the clean rerun


def test_streams_yaml_points_at_written_streams(spark, sample_lake, tmp_path):
    from mixlake.stages import mix, tokens, verify_mds, write_mds

    base, _ = sample_lake
    cfg = sample_lake_cfg(base, "[ingest,tokens,mix,write_mds,verify_mds]", "mds.max_seq_len=256")
    tokens.run(spark, cfg)
    mix.run(spark, cfg)
    res = write_mds.run(spark, cfg)
    verify_mds.run(spark, cfg)
    with open(f"{base.lake}/streams.yaml") as f:
        streams = yaml.safe_load(f)["train_loader"]["dataset"]["streams"]
    for name, s in streams.items():
        assert os.path.exists(os.path.join(s["local"], "index.json")), name
    # the stage's numbers against what it read and what the streams hold
    inp = spark.read.format("delta").load(f"{base.lake}/tables/{res.details['input_table']}")
    assert res.details["input_table"] == "documents"  # no cleaning stage in this stages list
    manifest = spark.read.format("delta").load(f"{base.lake}/tables/mds_manifest").collect()
    assert res.records_out == sum(r.docs for r in manifest)
    samples = sum(r.samples for r in manifest)
    assert samples == res.details["samples"]
    assert res.records_in == inp.count()
    assert res.records_in == res.records_out + res.dropped


def test_missing_or_changed_shards_make_write_mds_rerun(spark, sample_dir, tmp_path):
    """Resume correctness (issue 14): the MDS files, not only ``mds_manifest``, decide whether write_mds is done."""
    from conftest import SAMPLE_ARGS, compose
    from mixlake.delta import table_path
    from mixlake.pipeline import run_pipeline

    lake = tmp_path / "lake"
    cfg = compose(*SAMPLE_ARGS, f"sample.dir={sample_dir}", f"lake={lake}", "mds.max_seq_len=256",
                  "stages=[ingest,tokens,mix,write_mds,verify_mds]")

    def statuses() -> dict[str, str]:
        rows = spark.read.format("delta").load(table_path(str(lake), "runs")).collect()
        last = max(r.run_id for r in rows)
        return {r.stage: r.status for r in rows if r.run_id == last}

    run_pipeline(spark, cfg)
    written = _files(lake / "mds")
    run_pipeline(spark, cfg)
    assert statuses()["write_mds"] == statuses()["verify_mds"] == "skipped"

    shard = sorted(k for k in written if os.path.basename(k).startswith("shard."))[0]
    os.remove(lake / "mds" / shard)
    run_pipeline(spark, cfg)
    st = statuses()
    assert (st["tokens"], st["write_mds"], st["verify_mds"]) == ("skipped", "succeeded", "succeeded")
    assert _files(lake / "mds") == written  # the same bytes again

    with open(lake / "mds" / shard, "ab") as f:  # a shard changed behind mixlake's back
        f.write(b"\0")
    run_pipeline(spark, cfg)
    assert statuses()["write_mds"] == "succeeded" and _files(lake / "mds") == written
    run_pipeline(spark, cfg)
    assert statuses()["write_mds"] == statuses()["verify_mds"] == "skipped"


def test_verify_checks_every_shard_on_executors_and_reads_back_a_seeded_sample(spark, tmp_path):
    """verify_mds (issue 13): every shard's bytes, hashes and sample count are checked by Spark tasks; streaming reads
    back ``read_shards`` seeded shards (all with ``full``); each kind of damage is reported naming the shard."""
    import shutil

    from mixlake.mds.verify import VerifyConfig, chosen_shards, verify_streams

    cfg = MDSConfig(format="text", partitions=2, size_limit=1 << 12, text_columns=["doc_id"])
    manifest = write_streams(_docs(spark, 80, ("a",)), cfg, TokenizerConfig(), str(tmp_path / "w"), {})
    expected = {"a": sum(r["samples"] for r in manifest)}
    stream = str(tmp_path / "w" / "a")
    shards = json.load(open(os.path.join(stream, "index.json")))["shards"]  # noqa: SIM115
    assert len(shards) >= 6 and all(s["zip_data"] for s in shards)

    sc = spark.sparkContext
    sc.setJobGroup("verify-test", "verify_streams")
    try:
        rep = verify_streams(spark, {"a": stream}, expected, VerifyConfig(read_shards=2))["a"]
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert sc.statusTracker().getJobIdsForGroup("verify-test")  # the shard checks ran as Spark tasks
    picked = chosen_shards(shards, 2, 0)
    assert rep["ok"] and rep["samples"] == expected["a"] and rep["shards"] == len(shards)
    assert rep["shards_read"] == 2 and rep["samples_read"] == sum(s["samples"] for s in picked)
    assert chosen_shards(shards, 2, 0) == picked  # the same shards on every run
    assert len({json.dumps(chosen_shards(shards, 2, seed)) for seed in range(6)}) > 1  # the seed decides which
    full = verify_streams(spark, {"a": stream}, expected, VerifyConfig(full=True))["a"]
    assert full["ok"] and (full["shards_read"], full["samples_read"]) == (len(shards), expected["a"])

    def damaged(label, damage):
        d = str(tmp_path / label / "a")
        shutil.copytree(stream, d)
        damage(d)
        return verify_streams(spark, {"a": d}, expected, VerifyConfig())["a"]

    victim = shards[3]["zip_data"]["basename"]

    def flip(d):  # same length, one byte changed: only the hashes can tell
        with open(os.path.join(d, victim), "r+b") as f:
            f.seek(20)
            b = f.read(1)
            f.seek(20)
            f.write(bytes([b[0] ^ 0xFF]))

    rep = damaged("flip", flip)
    assert not rep["ok"] and any(victim in p and "sha1 mismatch" in p for p in rep["problems"]), rep["problems"]
    rep = damaged("gone", lambda d: os.remove(os.path.join(d, victim)))
    assert rep["problems"] == [f"missing shard file {victim}"]
    rep = damaged("extra", lambda d: open(os.path.join(d, os.path.dirname(victim), "stray.bin"), "wb").close())
    (problem,) = rep["problems"]
    assert "files not in the index" in problem and "stray.bin" in problem

    def miscount(d):  # the index lies about one shard's sample count (its hashes still match the file)
        index = json.load(open(os.path.join(d, "index.json")))  # noqa: SIM115
        index["shards"][3]["samples"] += 1
        with open(os.path.join(d, "index.json"), "w") as f:
            json.dump(index, f)

    rep = damaged("miscount", miscount)
    assert any(victim in p and "header counts" in p for p in rep["problems"]), rep["problems"]
    assert any("write manifest expects" in p for p in rep["problems"]), rep["problems"]
