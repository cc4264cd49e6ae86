"""The report people look at: ``${lake}/report/index.html`` (self-contained, inline PNGs) and ``report.md``.

Only aggregates reach the driver (per-source counts, top-k lists, histograms); every section is skipped with a
note when the stage that feeds it has not run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from mixlake import storage
from mixlake.dedup.config import candidate_probability
from mixlake.delta import lake_root, table_exists, table_path
from mixlake.storage import S3Config

log = logging.getLogger(__name__)


@dataclass
class Section:
    title: str
    text: str = ""
    table: list[list[Any]] | None = None
    header: list[str] | None = None
    image: bytes | None = None
    notes: list[str] = field(default_factory=list)


# Sections are built on several threads (their Spark queries overlap); each plot is its own Figure object (no pyplot
# state), and the rendering, whose font caches matplotlib does not promise to be thread-safe, is one at a time.
_RENDER = threading.Lock()


def _subplots(*args: Any, **kwargs: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=kwargs.pop("figsize"))
    return fig, fig.subplots(*args, **kwargs)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with _RENDER:
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _table(spark: SparkSession, lake: str, name: str) -> DataFrame | None:
    path = table_path(lake, name)
    return spark.read.format("delta").load(path) if table_exists(spark, path) else None


def _section(spark: SparkSession, lake: str, name: str, missing: str, title: str,
             text: str = "") -> tuple[DataFrame | None, Section]:
    """The table a section is built from (None when absent) and the section, noting ``missing`` when absent."""
    df = _table(spark, lake, name)
    sec = Section(title, text)
    if df is None:
        sec.notes.append(missing)
    return df, sec


def funnel(spark: SparkSession, lake: str) -> Section:
    stages = [("ingest", "documents"), ("quality", "quality_kept"), ("dedup", "deduped"), ("semdedup", "semdeduped"),
              ("spans", "documents_clean"), ("decontam", "documents_decontaminated")]
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for stage, name in stages:
        df = _table(spark, lake, name)
        if df is None:
            continue
        for r in df.groupBy("source").agg(F.count(F.lit(1)).alias("n"), F.sum("n_chars").alias("c")).collect():
            counts.setdefault(r.source, {})[stage] = (int(r.n), int(r.c or 0))
    mds = _table(spark, lake, "mds_manifest")
    if mds is not None:
        for r in mds.groupBy("source").agg(F.sum("docs").alias("n"), F.sum("tokens").alias("t")).collect():
            counts.setdefault(r.source, {})["mds"] = (int(r.n), int(r.t))
    tok = _table(spark, lake, "token_summary")
    tokens = {r.source: (int(r.tokens), int(r.bytes)) for r in tok.collect()} if tok is not None else {}
    order = [s for s, _ in stages] + ["mds"]
    present = [s for s in order if any(s in v for v in counts.values())]
    sec = Section("Funnel per source", "Documents surviving each stage (mds: documents written to MDS). Tokens are "
                  "measured on the tokenized table and estimated elsewhere from characters.")
    sec.header = ["source", *[f"{s} docs" for s in present], "tokens (tokenized table)"]
    sec.table = [[src, *[counts[src].get(s, (None,))[0] for s in present], tokens.get(src, (None,))[0]]
                 for src in sorted(counts)]
    if counts:
        fig, ax = _subplots(figsize=(8, 3.8))
        for src in sorted(counts):
            ys = [counts[src].get(s, (0,))[0] for s in present]
            ax.plot(present, ys, marker="o", label=src)
        ax.set_yscale("log")
        ax.set_ylabel("documents")
        ax.set_title("Documents through the pipeline")
        ax.legend(fontsize=8)
        sec.image = _png(fig)
    return sec


def quarantine(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "quarantine", "ingest has not run", "Quarantine",
                       "Input records that could not become documents, by reason.")
    if df is None:
        return sec
    rows = (df.withColumn("reason", F.split("reason", ":")[0]).groupBy("source", "reason").count()
            .orderBy(F.desc("count")).collect())
    sec.header, sec.table = ["source", "reason", "records"], [[r.source, r.reason, r["count"]] for r in rows]
    return sec


def quality_rules(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "quality_counts", "quality has not run", "Quality rules",
                       "Documents each rule would drop (a document can fail several), with one example.")
    if df is None:
        return sec
    docs = _table(spark, lake, "documents")
    rows = df.orderBy(F.desc("dropped")).limit(40).collect()
    ids = [r.example_doc_id for r in rows]
    text = {r.doc_id: r.text for r in docs.filter(F.col("doc_id").isin(ids)).select("doc_id", "text").collect()} \
        if docs is not None and ids else {}
    sec.header = ["source", "rule", "dropped", "example"]
    sec.table = [[r.source, r.rule, r.dropped, (text.get(r.example_doc_id) or "")[:160].replace("\n", " ⏎ ")]
                 for r in rows]
    if rows:
        agg: dict[str, int] = {}
        for r in df.collect():
            agg[r.rule] = agg.get(r.rule, 0) + int(r.dropped)
        items = sorted(agg.items(), key=lambda kv: kv[1])
        fig, ax = _subplots(figsize=(8, max(2.5, 0.22 * len(items))))
        ax.barh([k for k, _ in items], [v for _, v in items], color="#c0504d")
        ax.set_xlabel("documents dropped")
        ax.tick_params(axis="y", labelsize=7)
        sec.image = _png(fig)
    return sec


def quality_model_section(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "quality_model", "the learned quality model is off (quality_model.enabled)",
                       "Quality model", "GPT-3's HashingTF + logistic regression classifier trained on this lake: "
                       "held-out metrics, score histograms per source, the most weighted words.")
    if df is None:
        return sec
    m = json.loads(df.first().metrics)
    sec.header = ["model", "AUC (held out)", "threshold", "precision", "recall", "held-out docs", "select"]
    sec.table = [[m["path"], f"{m['auc']:.3f}", m["threshold"], f"{m['precision']:.3f}", f"{m['recall']:.3f}",
                  m["holdout_docs"], m["select"]]]
    feats = m.get("top_features", {})
    sec.notes.append("positive words: " + ", ".join(f"{w} ({x:+.2f})" for w, x in feats.get("positive", [])[:12]))
    sec.notes.append("negative words: " + ", ".join(f"{w} ({x:+.2f})" for w, x in feats.get("negative", [])[:12]))
    q = _table(spark, lake, "quality")
    if q is not None and "quality_model_score" in q.columns:
        rows = (q.filter(F.col("quality_model_score").isNotNull())
                .groupBy("source", F.least(F.floor(F.col("quality_model_score") * 20), F.lit(19)).alias("b"))
                .agg(F.count(F.lit(1)).alias("n")).collect())
        fig, ax = _subplots(figsize=(8, 3.2))
        for src in sorted({r.source for r in rows}):
            hist = [0] * 20
            for r in rows:
                if r.source == src:
                    hist[int(r.b)] = int(r.n)
            ax.plot([(i + 0.5) / 20 for i in range(20)], hist, marker=".", label=src)
        ax.set_xlabel("quality_model_score")
        ax.set_ylabel("documents")
        ax.legend(fontsize=8)
        sec.image = _png(fig)
    return sec


def duplicates(spark: SparkSession, lake: str, bands: int, rows: int, threshold: float) -> list[Section]:
    df, sec = _section(spark, lake, "duplicates", "dedup has not run", "Duplicate clusters",
                       "Cluster-size distribution (log-log) and the largest clusters.")
    out = [sec]
    if df is not None:
        dist = (df.filter("is_representative").groupBy("cluster_size").count().orderBy("cluster_size").collect())
        if dist:
            fig, ax = _subplots(figsize=(6, 3.5))
            ax.loglog([r.cluster_size for r in dist], [r["count"] for r in dist], "o-")
            ax.set_xlabel("cluster size (documents)")
            ax.set_ylabel("clusters")
            ax.set_title("Duplicate cluster sizes")
            sec.image = _png(fig)
        top = df.filter("is_representative").orderBy(F.desc("cluster_size"), "cluster_id").limit(10).collect()
        docs = _table(spark, lake, "documents")
        texts = {r.doc_id: r.text for r in docs.filter(F.col("doc_id").isin([t.doc_id for t in top]))
                 .select("doc_id", "text").collect()} if docs is not None and top else {}
        sec.header = ["cluster", "size", "kind", "kept source", "sample text"]
        sec.table = [[t.cluster_id[:12], t.cluster_size, t.kind, t.source,
                      (texts.get(t.doc_id) or "")[:140].replace("\n", " ⏎ ")] for t in top]
        summary = _table(spark, lake, "dedup_summary")
        if summary is not None:
            s = summary.first().asDict()
            sec.text += (f" Candidates {s['candidates']:,} ({s.get('candidates_all_pairs', 0):,} all-pairs in small "
                         f"buckets, {s.get('candidates_star', 0):,} star and {s.get('candidates_reroot', 0):,} "
                         f"re-rooted in hot buckets), verified {s['verified']:,}, rejected by verification "
                         f"{s['rejected']:,}; {s['clusters']:,} clusters, the largest {s['largest_cluster']:,} "
                         f"documents; connected components in {s.get('components_rounds', '?')} rounds; "
                         f"{s['below_min_shingles']:,} documents too short for MinHash.")
    curve = Section("LSH S-curve", f"Probability that a pair becomes a candidate, {bands} bands x {rows} rows; "
                    f"verification threshold {threshold}.")
    xs = [i / 200 for i in range(201)]
    fig, ax = _subplots(figsize=(6, 3.5))
    ax.plot(xs, [candidate_probability(x, bands, rows) for x in xs])
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
    ax.set_xlabel("Jaccard similarity")
    ax.set_ylabel("P(candidate)")
    ax.legend()
    curve.image = _png(fig)
    out.append(curve)
    return out


def spans(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "spans", "spans has not run", "Top repeated spans",
                       "Spans (sentence windows) repeated across the corpus — Lee et al.'s \"61-word sentence\" table.")
    if df is None:
        return sec
    rows = df.orderBy(F.desc("count"), "span_hash").limit(15).collect()
    sec.header = ["count", "documents", "words", "removed", "span"]
    sec.table = [[r["count"], r.n_docs, r.n_words, r.removed, r.text[:200].replace("\n", " ")] for r in rows]
    return sec


def decontamination(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "decontam_counts", "decontam has not run", "Decontamination",
                       "Eval items whose n-grams occur in the training corpus (GPT-3 appendix C). The clean subsets "
                       "are in eval_clean/<task>.jsonl, the seen items in <task>.dirty.jsonl: report accuracy on "
                       "both.")
    if df is None:
        return sec
    cont = _table(spark, lake, "contamination")
    top: dict[str, str] = {}
    examples: list[list[Any]] = []
    if cont is not None:
        valid = cont.filter(F.col("action") != "ignored_common")
        for r in (valid.groupBy("task", "source").agg(F.countDistinct("item_id").alias("n"))
                  .orderBy("task", F.desc("n"), "source").collect()):
            top[r.task] = (top[r.task] + ", " if r.task in top else "") + f"{r.source} ({r.n})"
        for r in (valid.groupBy("task", "item_id").agg(F.min(F.struct("doc_id", "char_start", "ngram")).alias("m"),
                                                        F.first("action").alias("action"))
                  .orderBy("task", "item_id").limit(10).collect()):
            examples.append([r.task, r.item_id, r.m.doc_id[:12], r.action, r.m.ngram[:160].replace("\n", " ")])
    sec.header = ["task", "items", "checked", "contaminated", "%", "documents hit", "changed", "dropped",
                  "common n-grams ignored", "top sources (items)"]
    sec.table = [[r.task, r["items"], r.items_checked, r.items_contaminated, f"{r.pct_contaminated:.2f}",
                  r.docs_hit, r.docs_changed, r.docs_dropped, r.ngrams_ignored_common, top.get(r.task, "")]
                 for r in df.orderBy("task").collect()]
    for e in examples:
        sec.notes.append(f"{e[0]} item {e[1]} in document {e[2]} ({e[3]}): “{e[4]}”")
    return sec


def semantic_dedup(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "semdedup_sweep", "semdedup has not run", "Semantic duplicates (SemDeDup)",
                       "Documents whose cosine to an earlier-ranked member of their k-means cluster is >= 1 - eps "
                       "(Abbas et al. 2023), for each eps of the sweep; the configured eps is marked. Examples are "
                       "pairs just above each cut-off: read them before choosing eps.")
    if df is None:
        return sec
    rows = df.orderBy("eps").collect()
    sec.header = ["eps", "min cosine", "documents removed", "%", "configured"]
    sec.table = [[r.eps, f"{r.min_cosine:.3f}", r.docs_removed, f"{r.pct_removed:.2f}", "yes" if r.configured else ""]
                 for r in rows]
    for r in rows:
        sec.notes += [f"eps {r.eps}: {e}" for e in r.examples]
    ev = _table(spark, lake, "semdedup_eval")
    if ev is not None:
        for r in ev.orderBy("embedder", "eps").collect():
            sec.notes.append(f"eval_semdedup {r.embedder} eps={r.eps}: same-page recall J<0.5 {r.recall_j_lt_0_5}, "
                             f"0.5-0.8 {r.recall_j_0_5_0_8}, >=0.8 {r.recall_j_ge_0_8}; cross-page merges "
                             f"{r.cross_page_merges}")
    cl = _table(spark, lake, "semdedup_clusters")
    if cl is not None:
        sizes = [int(r.size) for r in cl.filter(F.col("cluster") != "-").select("size").collect()]
        if sizes:
            fig, ax = _subplots(figsize=(7, 3))
            ax.hist(sizes, bins=min(40, max(5, len(sizes))), color="#4f81bd")
            ax.set_xlabel("cluster size (documents)")
            ax.set_ylabel("clusters")
            ax.set_title(f"{len(sizes)} k-means clusters")
            sec.image = _png(fig)
    return sec


def mixture(spark: SparkSession, lake: str, s3: S3Config | None = None) -> Section:
    df, sec = _section(spark, lake, "mixture", "mix has not run", "Mixture plan")
    if df is None:
        return sec
    rows = df.filter("plan = 0").orderBy("source").collect()
    sec.header = ["source", "tokens available", "proportion", "tokens used", "epochs", "effective tokens", "flags"]
    sec.table = [[r.source, f"{r.unique_tokens:,.0f}", f"{r.proportion:.3f}", f"{r.tokens:,.0f}",
                  f"{r.epochs:.2f}", f"{r.effective_tokens:,.0f}", ", ".join(r.flags)] for r in rows]
    if rows:
        sec.text = f"Budget {rows[0].budget_tokens:,.0f} tokens, strategy {rows[0].strategy}."
        sec.notes += list(rows[0].notes or [])
        fig, (a1, a2) = _subplots(1, 2, figsize=(9, 3.5))
        a1.bar([r.source for r in rows], [r.proportion for r in rows])
        a1.set_title("proportion")
        a2.bar([r.source for r in rows], [r.epochs for r in rows], color="#9bbb59")
        a2.axhline(4, color="red", linestyle="--", linewidth=1)
        a2.set_title("epochs (dashed: 4)")
        sec.image = _png(fig)
    md = f"{lake}/report/mixture.md"
    if storage.exists(md, s3):
        sec.notes.append(f"all plans (ladder): {md}")
    return sec


def mds_summary(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "mds_manifest", "write_mds has not run", "MDS output",
                       "Samples, documents and tokens written per stream.")
    if df is None:
        return sec
    rows = (df.groupBy("source").agg(F.count(F.lit(1)).alias("parts"), F.sum("shards").alias("shards"),
                                     F.sum("samples").alias("samples"), F.sum("docs").alias("docs"),
                                     F.sum("tokens").alias("tokens")).orderBy("source").collect())
    sec.header = ["stream", "parts", "shards", "samples", "documents", "tokens"]
    sec.table = [[r.source, r.parts, r.shards, r.samples, r.docs, r.tokens] for r in rows]
    return sec


def run_times(spark: SparkSession, lake: str) -> Section:
    df, sec = _section(spark, lake, "runs", "no runs recorded yet", "Run times", "The latest run of each stage.")
    if df is None:
        return sec
    from pyspark.sql import Window

    w = Window.partitionBy("stage").orderBy(F.desc("started_at"))
    rows = (df.filter("status != 'skipped'").withColumn("_r", F.row_number().over(w)).filter("_r = 1")
            .orderBy("started_at").collect())
    sec.header = ["stage", "status", "seconds", "in", "out", "dropped", "quarantined", "run"]
    sec.table = [[r.stage, r.status, f"{r.seconds:.1f}", r.records_in, r.records_out, r.dropped, r.quarantined,
                  r.run_id] for r in rows]
    if rows:
        fig, ax = _subplots(figsize=(7, 3))
        ax.barh([r.stage for r in rows], [r.seconds for r in rows], color="#4f81bd")
        ax.set_xlabel("seconds")
        ax.invert_yaxis()
        sec.image = _png(fig)
    return sec


def build_sections(spark: SparkSession, lake: str, bands: int, rows: int, threshold: float,
                   s3: S3Config | None = None) -> list[Section]:
    """Every section, in report order. They are built by four threads: each is a few small Spark queries whose
    driver-side planning and first Delta snapshot reads dominate, and in a fresh JVM they overlap (the standalone
    report stage on the scale-20 lake 34.2-37.6 -> 31.6-31.9 s; with a warm session the gain is within noise)."""
    builders: list[Any] = [
        lambda: [funnel(spark, lake)], lambda: [quarantine(spark, lake)], lambda: [quality_rules(spark, lake)],
        lambda: [quality_model_section(spark, lake)], lambda: duplicates(spark, lake, bands, rows, threshold),
        lambda: [semantic_dedup(spark, lake)], lambda: [spans(spark, lake)], lambda: [decontamination(spark, lake)],
        lambda: [mixture(spark, lake, s3)], lambda: [mds_summary(spark, lake)], lambda: [run_times(spark, lake)]]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="mixlake-report") as pool:
        return [sec for secs in pool.map(lambda build: build(), builders) for sec in secs]


def render_html(sections: list[Section], title: str) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
             "th{background:#eee}img{max-width:100%;border:1px solid #ddd}.note{color:#777}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.image:
            parts.append(f"<img alt='{html.escape(s.title)}' src='data:image/png;base64,"
                         f"{base64.b64encode(s.image).decode()}'>")
        if s.table:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in s.header or []) + "</tr>")
            for row in s.table:
                parts.append("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>"
                                              for v in row) + "</tr>")
            parts.append("</table>")
        for n in s.notes:
            parts.append(f"<p class='note'>{html.escape(n)}</p>")
    parts.append("</body></html>")
    return "".join(parts)


def render_markdown(sections: list[Section], title: str, images: dict[str, bytes]) -> str:
    """Markdown for ``sections``; their figures are added to ``images`` (file name → PNG bytes)."""
    out = [f"# {title}\n"]
    for i, s in enumerate(sections):
        out.append(f"## {s.title}\n")
        if s.text:
            out.append(s.text + "\n")
        if s.image:
            name = f"fig-{i:02d}.png"
            images[name] = s.image
            out.append(f"![{s.title}]({name})\n")
        if s.table:
            out.append("| " + " | ".join(map(str, s.header or [])) + " |")
            out.append("|" + "---|" * len(s.header or []))
            for row in s.table:
                out.append("| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |")
            out.append("")
        out += [f"- {n}" for n in s.notes]
        out.append("")
    return "\n".join(out)


def write_report(spark: SparkSession, lake: str, bands: int, rows: int, threshold: float,
                 s3: S3Config | None = None) -> str:
    """Build and write the report under ``${lake}/report`` (local or S3); returns the path of ``index.html``."""
    root = lake_root(lake)
    out = f"{root}/report"
    sections = build_sections(spark, root, bands, rows, threshold, s3)
    title = f"mixlake report — {root}"
    images: dict[str, bytes] = {}
    storage.write_text(f"{out}/report.md", render_markdown(sections, title, images), s3)
    for name, png in images.items():
        storage.write_bytes(f"{out}/{name}", png, s3)
    storage.write_text(f"{out}/sections.json", json.dumps(
        [{"title": s.title, "rows": len(s.table or []), "image": s.image is not None} for s in sections], indent=1), s3)
    storage.write_text(f"{out}/index.html", render_html(sections, title), s3)
    return f"{out}/index.html"
