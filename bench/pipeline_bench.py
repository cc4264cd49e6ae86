"""The whole default pipeline as a user runs it (``python jobs/pipeline.py lake=... sample.scale=S``), per stage.

For each scale, three runs of one fresh lake, each a separate process (JVM start included, as for a user):

1. ``first``: every stage runs;
2. ``skipped``: the same command again — every stage is skipped, so its time is the pure fixed cost (process + JVM +
   config + lake lease + the run bookkeeping: fingerprints, the ``runs`` table, table versions);
3. ``forced``: ``force=true`` — every stage reruns over existing tables (Delta overwrites, as a user's re-run does).

Per stage it reports seconds (from the ``runs`` table), documents in/out, docs/s and MB/s of input text, and the
bookkeeping between stages (wall time between consecutive stages minus the stage's own seconds). Anchors: beside
ingest, pyarrow's JSON reader over the same sample files (``pyarrow.json.read_json``, single process); beside quality,
datatrove 0.10's Gopher/C4/FineWeb filters (``bench/datatrove_anchor.py``, in ``.venv-anchor`` from ``make
bench-anchors``) and mixlake's quality signals, each in one process on the same 2,000 documents (every
``documents`` row whose ``doc_id`` hash falls in a fixed residue class, the first 2,000 by ``doc_id``).

Writes ``bench/results/pipeline.json``.  ``python bench/pipeline_bench.py [--scales 0.01 20]``
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("MIXLAKE_BENCH_DIR", "/tmp/mixlake-bench")


def _pipeline(lake: str, scale: float, *extra: str) -> float:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.join(REPO, "jobs", "pipeline.py"), f"lake={lake}",
                        f"sample.scale={scale}", "spark.conf.spark.ui.showConsoleProgress=false",
                        # at tiny scales a source may not fill one 2048-token block; skipping it changes nothing else
                        "mds.empty_source=skip", *extra],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"pipeline failed (scale {scale}):\n{p.stderr[-4000:]}")
    return time.perf_counter() - t


def _runs(spark: Any, lake: str) -> list[dict[str, Any]]:
    from mixlake.delta import table_path

    rows = spark.read.format("delta").load(table_path(lake, "runs")).orderBy("started_at").collect()
    by_run: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_run.setdefault(r.run_id, []).append(r.asDict())
    return [by_run[k] for k in sorted(by_run)]


def _stage_table(run: list[dict[str, Any]], text_mb: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(run):
        nxt = run[i + 1]["started_at"] if i + 1 < len(run) else None
        gap = (nxt - r["started_at"]).total_seconds() - r["seconds"] if nxt is not None else None
        secs = r["seconds"] or 0.0
        n_in = r["records_in"] or 0
        mb = text_mb.get(r["stage"])
        details = json.loads(r["details"]) if r.get("details") else {}
        out.append({"stage": r["stage"], "status": r["status"], "seconds": secs, "records_in": n_in,
                    "records_out": r["records_out"], "docs_per_s": n_in / secs if secs and n_in else None,
                    "mb_per_s": mb / secs if secs and mb else None, "bookkeeping_after_s": gap,
                    # stages that time their own phases report them: dedup and spans as ordered [name, seconds] pairs in
                    # details.phases, semdedup as details.seconds
                    "phases": dict(details.get("phases") or [])
                    or (details["seconds"] if isinstance(details.get("seconds"), dict) else None)})
    return out


def _print(label: str, wall: float, table: list[dict[str, Any]]) -> None:
    print(f"\n{label}: {wall:.1f} s wall (process)")
    print(f"{'stage':<11}{'status':<10}{'seconds':>8}{'docs in':>10}{'docs/s':>9}{'MB/s':>7}{'bookkeeping':>12}")
    for r in table:
        dps = f"{r['docs_per_s']:,.0f}" if r["docs_per_s"] else "-"
        mbs = f"{r['mb_per_s']:.1f}" if r["mb_per_s"] else "-"
        bk = f"{r['bookkeeping_after_s']:.2f}" if r["bookkeeping_after_s"] is not None else "-"
        print(f"{r['stage']:<11}{r['status']:<10}{r['seconds']:8.1f}{r['records_in']:>10,}{dps:>9}{mbs:>7}{bk:>12}")
        if r.get("phases"):
            print("    phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()))
    print(f"{'sum':<21}{sum(r['seconds'] for r in table):8.1f}")


def _pyarrow_json_anchor(sample_dir: str) -> dict[str, Any]:
    """pyarrow's JSON reader over the sample's JSONL(.gz) files: bytes of text fields per second, one process."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    files = sorted(glob.glob(f"{sample_dir}/**/*.jsonl*", recursive=True))
    t = time.perf_counter()
    mb = 0.0
    rows = 0
    for f in files:
        try:
            tab = pj.read_json(f)
        except (pa.ArrowInvalid, OSError) as e:  # the sample plants bad lines and cut files; pyarrow stops there
            print(f"  pyarrow.json cannot read {os.path.basename(f)} whole ({str(e)[:80]}); skipped")
            continue
        rows += tab.num_rows
        if "text" in tab.column_names:
            mb += float(pc.sum(pc.binary_length(tab["text"].cast("binary"))).as_py() or 0) / 1e6
    s = time.perf_counter() - t
    return {"files": len(files), "rows": rows, "text_mb": mb, "seconds": s, "mb_per_s": mb / s if s else None}


ANCHOR_PYTHON = os.path.join(REPO, ".venv-anchor", "bin", "python")


def _quality_anchor(spark: Any, lake: str, n: int = 2_000) -> dict[str, Any]:
    """mixlake's quality signals (the Arrow line/word kernels, the repetition signals, langid) and datatrove's
    Gopher/C4/FineWeb filters on the same ``n`` documents, each in one process: documents per second."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from mixlake.delta import table_path
    from mixlake.quality.langid import detect_languages
    from mixlake.quality.signals import line_word_signals, repetition_signals

    docs = spark.read.format("delta").load(table_path(lake, "documents"))
    total = docs.count()
    every = max(1, total // (2 * n))
    rows = (docs.where(F.pmod(F.xxhash64("doc_id"), F.lit(every)) == 0).orderBy("doc_id").limit(n)
            .select("doc_id", "source", "text").collect())  # n documents: small
    texts = pa.array([r.text or "" for r in rows], pa.string())
    path = os.path.join(WORK, "quality_anchor_texts.parquet")
    pq.write_table(pa.table({"text": texts}), path)
    out: dict[str, Any] = {"documents": len(texts), "text_mb": sum(len(t.encode()) for t in texts.to_pylist()) / 1e6,
                           "sources": sorted({r.source for r in rows})}
    detect_languages(["warm-up"], "langid")
    mixlake: dict[str, float] = {}
    for name, run in [("line_word_signals", lambda: line_word_signals(texts)),
                      ("repetition_signals", lambda: repetition_signals(texts)),
                      ("langid", lambda: detect_languages(texts.to_pylist(), "langid"))]:
        t = time.perf_counter()
        run()
        mixlake[name] = time.perf_counter() - t
    out["mixlake"] = {"seconds": mixlake, "docs_per_s": len(texts) / sum(mixlake.values()),
                      "docs_per_s_without_langid": len(texts) / (sum(mixlake.values()) - mixlake["langid"])}
    if not os.path.exists(ANCHOR_PYTHON):
        out["datatrove"] = None
        return out
    done = subprocess.run([ANCHOR_PYTHON, os.path.join(REPO, "bench", "datatrove_anchor.py"), path],
                          capture_output=True, text=True, check=True)
    out["datatrove"] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[0.01, 20.0])
    ap.add_argument("--runs", nargs="+", choices=["first", "skipped", "forced"], default=["first", "skipped", "forced"],
                    help="which of the three runs to time (first always runs: the others need its lake)")
    args = ap.parse_args()
    from pyspark.sql import functions as F

    from mixlake.config import SparkConfig
    from mixlake.delta import table_path
    from mixlake.spark import get_spark

    results: dict[str, Any] = {}
    spark = None
    for scale in args.scales:
        lake = f"{WORK}/pipeline-{scale:g}/lake"
        shutil.rmtree(os.path.dirname(lake), ignore_errors=True)
        walls = {"first": _pipeline(lake, scale)}
        if "skipped" in args.runs:
            walls["skipped"] = _pipeline(lake, scale)
        if "forced" in args.runs:
            walls["forced"] = _pipeline(lake, scale, "force=true")
        spark = spark or get_spark(SparkConfig(conf={"spark.ui.showConsoleProgress": "false"}))
        docs_mb = float(spark.read.format("delta").load(table_path(lake, "documents"))
                        .agg(F.sum(F.octet_length("text"))).first()[0] or 0) / 1e6
        text_mb = {"ingest": docs_mb, "quality": docs_mb}
        runs = _runs(spark, lake)
        entry: dict[str, Any] = {"scale": scale, "documents_text_mb": docs_mb}
        for (label, wall), run in zip(walls.items(), runs, strict=True):
            table = _stage_table(run, text_mb)
            _print(f"scale {scale:g}, {label} run", wall, table)
            entry[label] = {"wall_seconds": wall, "stages": table}
        if "skipped" in entry:
            skipped = entry["skipped"]
            per_stage = skipped["wall_seconds"] / max(1, len(skipped["stages"]))
            print(f"fixed cost: a run that skips all {len(skipped['stages'])} stages takes "
                  f"{skipped['wall_seconds']:.1f} s ({per_stage:.2f} s per stage, JVM start included)")
        entry["pyarrow_json"] = _pyarrow_json_anchor(f"{os.path.dirname(lake)}/lake/sample")
        a = entry["pyarrow_json"]
        print(f"anchor: pyarrow.json.read_json over the sample's JSONL files: {a['mb_per_s'] or 0:.1f} MB/s of text "
              f"({a['rows']:,} rows, 1 process)")
        entry["quality_anchor"] = q = _quality_anchor(spark, lake)
        m = q["mixlake"]
        print(f"quality on the same {q['documents']:,} documents ({q['text_mb']:.1f} MB; {', '.join(q['sources'])}), "
              f"one process: mixlake's signals {m['docs_per_s']:,.0f} docs/s "
              f"({m['docs_per_s_without_langid']:,.0f} without language id)")
        if q["datatrove"] is None:
            print(f"anchor: datatrove not measured: {ANCHOR_PYTHON} missing (make bench-anchors)")
        else:
            d = q["datatrove"]
            per = ", ".join(f"{k} {v['docs_per_s']:,.0f}" for k, v in d["filters"].items())
            print(f"anchor: datatrove 0.10 Gopher/C4/FineWeb filters, every filter on every document: "
                  f"{d['docs_per_s']:,.0f} docs/s ({per}); mixlake without language id is "
                  f"{m['docs_per_s_without_langid'] / d['docs_per_s']:.0f}x that")
        results[f"{scale:g}"] = entry
    os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
    with open(os.path.join(REPO, "bench", "results", "pipeline.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
