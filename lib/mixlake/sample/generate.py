"""The built-in sample corpus: deterministic, several sources, with recorded ground truth.

``generate_sample(cfg)`` writes real input files under ``sample.dir``:

* ``web/part-NNNNN.jsonl.gz`` — the largest source (JSONL.gz, fields ``id``, ``url``, ``text``, ``crawl``), with the
  injected cases: exact duplicates (byte-identical and case/whitespace variants), near-duplicates at known word-edit
  rates (word 5-gram Jaccard ≈ 0.5–0.97, measured and recorded), a 61-word boilerplate sentence repeated in hundreds
  of documents (Lee et al.'s C4 finding in miniature), low-quality pages (menus, lorem ipsum, symbol soup, JavaScript
  notices, repeated lines) and bad records (malformed JSON, invalid UTF-8, empty text, missing text field);
  ``web/part-truncated.jsonl.gz`` is a gzip cut short.
* ``wiki/part-00000.parquet`` — articles (``id``, ``title``, ``url``, ``text``); a few are copied into ``web``
  (cross-source exact duplicates, so the dedup keep rule's source priority matters).
* ``code/part-00000.jsonl.zst`` — code-like documents (zstd JSONL).
* ``books/book-NNNNN.txt`` — long plain-text documents, one per file, no ids.
* ``crawl/crawl-NNNNN.warc.gz`` — HTML pages as WARC response records (plus request records);
  ``crawl/crawl-truncated.warc.gz`` is cut mid-record.
* ``ground_truth.json`` — everything injected, keyed by the records' own ids (see ``GroundTruth`` below).

Text is drawn from a Zipfian (Zipf–Mandelbrot) vocabulary whose most frequent words are real English function words
(so stop-word and alphabetic-fraction rules behave as on real text) followed by synthetic words. Everything is a
function of ``sample.seed``: same seed and knobs → byte-identical files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mixlake.config import SampleConfig
from mixlake.text import jaccard, normalize, word_shingles

FUNCTION_WORDS = (
    "the of and to a in is that for it as was with be by on not he this are or his from at which but have an they "
    "one you were her all she there would their we him been has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such like our "
    "over man me even most made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still own see men work long "
    "get here between both life being under never day same another know while last might us great old year off "
    "come since against go came right used take three"
).split()

BOILERPLATE_61 = (
    "By continuing to browse this website you agree to our use of cookies and technologies for analytics "
    "personalised content and advertising as described in our privacy policy and you acknowledge that your "
    "information may be transferred to partners outside your country who process it on our behalf under "
    "safeguards that you can review by visiting the settings page of your account."
)

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore "
    "magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo "
    "consequat."
)


@dataclass
class GroundTruth:
    """What was injected, by source record id (``id`` field; books/crawl by relative file path + WARC id)."""

    seed: int
    exact_duplicates: list[list[str]] = field(default_factory=list)  # groups; first element is the original
    near_duplicates: list[list[Any]] = field(default_factory=list)  # [id_a, id_b, jaccard, edit_rate]
    # every duplicate pair in the gold format of eval_dedup: [[source, id_a], [source, id_b], jaccard]
    pairs: list[list[Any]] = field(default_factory=list)
    boilerplate: list[dict[str, Any]] = field(default_factory=list)  # {text, count, ids}
    low_quality: dict[str, list[str]] = field(default_factory=dict)  # kind -> ids
    bad_records: list[dict[str, Any]] = field(default_factory=list)  # {file, line, reason}
    files: dict[str, int] = field(default_factory=dict)  # relative file -> records written
    documents: dict[str, int] = field(default_factory=dict)  # source -> good documents written
    # eval items of eval/sample_eval.jsonl: {id, kind, docs: [[source, id], ...]}; kinds verbatim, recased,
    # question_only and code must be found, near_miss (runs of 11 matching words) and unplanted must not
    contamination: list[dict[str, Any]] = field(default_factory=list)


class _Words:
    def __init__(self, rng: np.random.Generator, vocab_size: int) -> None:
        syll = ["ka", "to", "ri", "mon", "sel", "va", "dor", "en", "li", "qua", "ber", "ti", "no", "ran", "su", "pel",
                "gra", "fi", "lo", "ston", "ma", "vel", "ho", "tur", "ne", "cas", "di", "bri", "ul", "zen"]
        words: list[str] = list(FUNCTION_WORDS)
        seen = set(words)
        while len(words) < vocab_size:
            n = int(rng.integers(2, 5))
            w = "".join(syll[int(i)] for i in rng.integers(0, len(syll), n))
            if w not in seen:
                seen.add(w)
                words.append(w)
        self.vocab = np.array(words, dtype=object)
        ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
        p = 1.0 / (ranks + 2.7) ** 1.07
        self.cdf = np.cumsum(p / p.sum())
        self.cdf[-1] = 1.0
        self.rng = rng

    def words(self, n: int) -> list[str]:
        # the array's own methods: np.searchsorted's dispatch wrapper and list() over an object array cost ~2 s of
        # the scale-20 sample's 1.6M calls
        return self.vocab[self.cdf.searchsorted(self.rng.random(n), side="right")].tolist()

    def sentence(self) -> str:
        n = int(self.rng.integers(7, 24))
        ws = self.words(n)
        if n > 10 and self.rng.random() < 0.4:
            ws[int(self.rng.integers(3, n - 3))] += ","
        return ws[0].capitalize() + " " + " ".join(ws[1:]) + "."

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(int(self.rng.integers(3, 7))))

    def document(self, paragraphs: int) -> str:
        return "\n\n".join(self.paragraph() for _ in range(paragraphs))


def _edit_words(text: str, rate: float, w: _Words) -> str:
    """Replace a fraction ``rate`` of the words (keeping paragraph structure) with different vocabulary words.

    At least one word always changes: a near-duplicate is never an exact one.
    """
    paras = [p.split(" ") for p in text.split("\n\n")]
    slots = [(pi, ti) for pi, toks in enumerate(paras) for ti in range(len(toks))]
    mask = w.rng.random(len(slots)) < rate
    if not mask.any():
        mask[int(w.rng.integers(0, len(slots)))] = True
    chosen = np.flatnonzero(mask)
    repl = w.words(len(chosen))
    for k, si in enumerate(chosen):
        pi, ti = slots[int(si)]
        new = repl[k]
        if new.strip(",.").lower() == paras[pi][ti].strip(",.").lower():
            new = new + "ly"
        paras[pi][ti] = new
    return "\n\n".join(" ".join(toks) for toks in paras)


def _j5(a: str, b: str) -> float:
    return round(jaccard(word_shingles(normalize(a)), word_shingles(normalize(b))), 4)


def _low_quality(kind: str, w: _Words) -> str:
    rng = w.rng
    if kind == "menu":
        items = ["Home", "About us", "Products", "Services", "Blog", "Contact", "Login", "Cart", "FAQ", "Careers"]
        lines = [f"• {items[int(i)]}" for i in rng.integers(0, len(items), int(rng.integers(12, 30)))]
        return "\n".join(lines)
    if kind == "lorem":
        return "\n\n".join([LOREM] * int(rng.integers(3, 8)))
    if kind == "symbols":
        chars = list("#$%^&*{}[]<>|~=+@!")
        return "\n".join("".join(chars[int(i)] for i in rng.integers(0, len(chars), 60)) for _ in range(8))
    if kind == "javascript":
        return ("Please enable JavaScript to view this page.\nThis site requires javascript to function properly.\n"
                "Terms of use | Privacy policy | Cookie policy")
    if kind == "repeated_lines":
        line = w.sentence()
        return "\n".join([line] * int(rng.integers(15, 40)))
    raise ValueError(kind)


def _code_doc(w: _Words) -> str:
    rng = w.rng
    lines = []
    for _ in range(int(rng.integers(3, 9))):
        name = "_".join(w.words(2)).replace(",", "")
        args = ", ".join(x.replace(",", "") for x in w.words(int(rng.integers(1, 4))))
        lines.append(f"def {name}({args}):")
        lines.append(f'    """{w.sentence()}"""')
        for _ in range(int(rng.integers(2, 6))):
            a, b = (x.replace(",", "") for x in w.words(2))
            lines.append(f"    {a} = {b} + {int(rng.integers(0, 100))}")
        lines.append(f"    return {{'{name}': {args.split(',')[0]}}}")
        lines.append("")
    return "\n".join(lines)


def _html_page(title: str, body: str, rng: np.random.Generator) -> bytes:
    nav = "".join(f'<li><a href="/{x.lower()}">{x}</a></li>' for x in ("Home", "News", "Sport", "About", "Contact"))
    paras = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    year = 2015 + int(rng.integers(0, 10))
    html = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<header><nav><ul>{nav}</ul></nav></header><main><article><h1>{title}</h1>{paras}</article></main>"
            f"<footer><p>&copy; {year} Example Media. All rights reserved.</p></footer></body></html>")
    return html.encode("utf-8")


def config_hash(sc: SampleConfig) -> str:
    d = asdict(sc)
    d.pop("dir")
    d.pop("enabled")
    d.pop("budget_tokens")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def ensure_sample(sc: SampleConfig) -> bool:
    """Generate the sample unless ``sc.dir`` already holds one made with the same knobs; True if generated."""
    marker = os.path.join(sc.dir, "_SUCCESS.json")
    if os.path.exists(marker):
        with open(marker) as f:
            if json.load(f).get("config_hash") == config_hash(sc):
                return False
    generate_sample(sc)
    return True


def generate_sample(sc: SampleConfig) -> GroundTruth:
    """Write the sample corpus into ``sc.dir`` (replacing it atomically via a sibling temp dir)."""
    out = os.path.abspath(sc.dir)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    rng = np.random.default_rng(sc.seed)
    w = _Words(rng, sc.vocab_size)
    gt = GroundTruth(seed=sc.seed)

    def n(x: int) -> int:
        return max(1, round(x * sc.scale))

    # wiki first: web copies some of its articles.
    wiki_rows = []
    for i in range(n(sc.wiki_docs)):
        title = " ".join(x.capitalize() for x in w.words(3)).replace(",", "")
        wiki_rows.append({"id": f"wiki-{i:07d}", "title": title,
                          "url": f"https://wiki.example.org/{title.replace(' ', '_')}",
                          "text": title + "\n\n" + w.document(int(rng.integers(3, 9)))})
    _write_parquet(os.path.join(tmp, "wiki", "part-00000.parquet"), wiki_rows)
    gt.files["wiki/part-00000.parquet"] = len(wiki_rows)
    gt.documents["wiki"] = len(wiki_rows)

    # web: originals, then injected cases.
    n_web = n(sc.web_docs)
    web: list[dict[str, Any]] = []
    for i in range(n_web):
        web.append({"id": f"web-{i:07d}", "url": f"https://site{i % 97}.example.com/page/{i}",
                    "text": w.document(int(rng.integers(2, 6))), "crawl": "CC-SAMPLE-2026"})
    reserved: set[int] = set()

    def pick(k: int) -> list[int]:
        free = np.setdiff1d(np.arange(n_web), np.fromiter(reserved, dtype=np.int64, count=len(reserved)))
        chosen = sorted(int(x) for x in rng.choice(free, size=min(k, len(free)), replace=False))
        reserved.update(chosen)
        return chosen

    next_id = [n_web]

    def new_web(text: str, url: str) -> str:
        rid = f"web-{next_id[0]:07d}"
        next_id[0] += 1
        web.append({"id": rid, "url": url, "text": text, "crawl": "CC-SAMPLE-2026"})
        return rid

    # low quality pages replace some originals' text.
    kinds = ["menu", "lorem", "symbols", "javascript", "repeated_lines"]
    for j, i in enumerate(pick(n(int(sc.web_docs * sc.low_quality_fraction)))):
        kind = kinds[j % len(kinds)]
        web[i]["text"] = _low_quality(kind, w)
        gt.low_quality.setdefault(kind, []).append(web[i]["id"])
    # boilerplate sentence inserted between paragraphs of distinct clean documents.
    bp_ids = []
    for i in pick(n(sc.boilerplate_docs)):
        paras = web[i]["text"].split("\n\n")
        at = int(rng.integers(0, len(paras) + 1))
        paras.insert(at, BOILERPLATE_61)
        web[i]["text"] = "\n\n".join(paras)
        bp_ids.append(web[i]["id"])
    gt.boilerplate.append({"text": BOILERPLATE_61, "words": len(BOILERPLATE_61.split()), "count": len(bp_ids),
                           "ids": bp_ids})
    # exact duplicates: byte-identical copies and case/whitespace variants (equal after normalisation).
    for j, i in enumerate(pick(n(int(sc.web_docs * sc.exact_dup_fraction)))):
        group = [web[i]["id"]]
        for c in range(1 + (j % 3 == 0)):
            text = web[i]["text"]
            if (j + c) % 2 == 1:
                text = text.upper().replace(". ", ".   ")
            group.append(new_web(text, web[i]["url"] + f"?copy={c}"))
        gt.exact_duplicates.append(group)
    # cross-source: wiki articles re-published on the web.
    for k in range(n(10)):
        src = wiki_rows[k * 7 % len(wiki_rows)]
        gt.exact_duplicates.append([src["id"], new_web(src["text"], f"https://mirror.example.net/{src['id']}")])
    # near duplicates at known edit rates; Jaccard measured on normalised word 5-grams.
    rates = [0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08, 0.11]
    for j, i in enumerate(pick(n(sc.near_dup_pairs))):
        rate = rates[j % len(rates)]
        text = _edit_words(web[i]["text"], rate, w)
        rid = new_web(text, web[i]["url"] + "?near")
        gt.near_duplicates.append([web[i]["id"], rid, _j5(web[i]["text"], text), rate])

    # decontamination: synthetic eval items planted into web (and, below, code) documents, with ground truth.
    plants_rng = np.random.default_rng([sc.seed, 15])  # its own stream: the rest of the sample is unchanged by it
    pw = _Words(plants_rng, sc.vocab_size)
    eval_items = []
    for k in range(sc.eval_items):
        question = " ".join(pw.sentence() for _ in range(3))
        while len(question.split()) < 30:
            question += " " + pw.sentence()
        eval_items.append({"id": f"eval-{k:03d}", "question": question, "answer": pw.sentence()})
    plant_kinds = ["verbatim", "recased", "question_only", "near_miss", "code", "unplanted"]
    web_free = [i for i in range(n_web) if i not in reserved]
    plant_rng_docs = [int(x) for x in plants_rng.permutation(len(web_free))]
    code_plants: list[tuple[int, str]] = []
    for k, item in enumerate(eval_items):
        kind = plant_kinds[k % len(plant_kinds)]
        record = {"id": item["id"], "kind": kind, "docs": []}
        if kind == "verbatim":
            text = item["question"] + " " + item["answer"]
        elif kind == "recased":  # equal after normalisation: case and punctuation only
            text = item["question"].upper().replace(" ", " ; ", 3).replace(".", " ?!")
        elif kind == "question_only":
            text = item["question"]
        elif kind == "near_miss":  # every 12th word changed: runs of 11 matching words, never a 13-gram
            ws = item["question"].split()
            text = " ".join("zzq" + w if j % 12 == 11 else w for j, w in enumerate(ws))
        else:
            text = ""
        if kind == "code":
            code_plants.append((k, item["question"]))
        elif text and plant_rng_docs:
            i = web_free[plant_rng_docs.pop()]
            reserved.add(i)
            paras = web[i]["text"].split("\n\n")
            paras.insert(int(plants_rng.integers(0, len(paras) + 1)), text)
            web[i]["text"] = "\n\n".join(paras)
            record["docs"].append(["web", web[i]["id"]])
        gt.contamination.append(record)
    os.makedirs(os.path.join(tmp, "eval"), exist_ok=True)
    with open(os.path.join(tmp, "eval", "sample_eval.jsonl"), "w") as fh:
        fh.writelines(json.dumps(x) + "\n" for x in eval_items)

    # shuffle deterministically so injected copies are spread over shards, then write shards with bad records.
    order = rng.permutation(len(web))
    web = [web[int(k)] for k in order]
    shards = max(1, sc.web_shards)
    lines_per: list[list[bytes]] = [[] for _ in range(shards)]
    for k, rec in enumerate(web):
        lines_per[k % shards].append(json.dumps(rec, ensure_ascii=False).encode("utf-8"))
    bad_kinds = [
        (b'{"id": "bad-json", "text": "unterminated', "malformed_json"),
        (b'{"id": "bad-utf8", "text": "caf\xe9 \xff\xfe"}', "invalid_utf8"),
        (b'{"id": "bad-empty", "text": "   "}', "empty_text"),
        (b'{"id": "bad-missing", "body": "no text field here"}', "missing_text_field"),
    ]
    for b in range(sc.bad_records):
        payload, reason = bad_kinds[b % len(bad_kinds)]
        shard = b % shards
        pos = int(rng.integers(0, len(lines_per[shard]) + 1))
        lines_per[shard].insert(pos, payload)
    good_web = len(web)
    # the web shards are compressed in background threads (zlib releases the GIL) while the other sources are made:
    # their gzip is a quarter of the scale-20 sample's time. Leaving the block waits for every write, also when
    # making a source raised (no thread still writes into a later attempt's temp dir); a failed write raises below,
    # before _SUCCESS.json
    written_shards = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mixlake-sample-gzip") as compressing:
        for s in range(shards):
            rel = f"web/part-{s:05d}.jsonl.gz"
            for ln, line in enumerate(lines_per[s], start=1):
                for payload, reason in bad_kinds:
                    if line == payload:
                        gt.bad_records.append({"file": rel, "line": ln, "reason": reason})
            shard_bytes = b"\n".join(lines_per[s]) + b"\n"
            written_shards.append(compressing.submit(_write_gzip, os.path.join(tmp, rel), shard_bytes))
            gt.files[rel] = len(lines_per[s])
        del lines_per
        # a truncated gzip: 40 good records then the stream is cut.
        trunc = [json.dumps({"id": f"web-trunc-{k:04d}", "url": f"https://trunc.example.com/{k}",
                             "text": w.document(2)}).encode() for k in range(40)]
        blob = _gzip_bytes(b"\n".join(trunc) + b"\n")
        _write_bytes(os.path.join(tmp, "web", "part-truncated.jsonl.gz"), blob[: int(len(blob) * 0.6)])
        gt.bad_records.append({"file": "web/part-truncated.jsonl.gz", "line": None, "reason": "corrupt_compression"})
        gt.documents["web"] = good_web

        # code (zstd JSONL).
        import zstandard

        code_docs = [{"id": f"code-{i:06d}", "repo": f"example/{'-'.join(w.words(2))}", "lang": "python",
                      "text": _code_doc(w)} for i in range(n(sc.code_docs))]
        for j, (k, question) in enumerate(code_plants):  # an eval item quoted in a docstring of a code file
            doc = code_docs[(7 * j + 3) % len(code_docs)]
            doc["text"] += f'\n\ndef solve_{k}():\n    """{question}"""\n    raise NotImplementedError\n'
            gt.contamination[k]["docs"].append(["code", doc["id"]])
        code_lines = [json.dumps(d).encode() for d in code_docs]
        _write_bytes(os.path.join(tmp, "code", "part-00000.jsonl.zst"),
                     zstandard.ZstdCompressor(level=3).compress(b"\n".join(code_lines) + b"\n"))
        gt.files["code/part-00000.jsonl.zst"] = len(code_lines)
        gt.documents["code"] = len(code_lines)

        # books: one long plain-text document per file.
        for i in range(n(sc.books_docs)):
            title = " ".join(x.capitalize() for x in w.words(4)).replace(",", "")
            n_chapters = int(rng.integers(3, 7))
            chapters = [f"Chapter {c + 1}\n\n" + w.document(int(rng.integers(6, 14))) for c in range(n_chapters)]
            _write_bytes(os.path.join(tmp, "books", f"book-{i:05d}.txt"),
                         (title + "\n\n" + "\n\n".join(chapters) + "\n").encode())
            gt.files[f"books/book-{i:05d}.txt"] = 1
        gt.documents["books"] = n(sc.books_docs)

        # crawl: WARC with request + response records; one truncated copy.
        pages = n(sc.crawl_pages)
        per_file = max(1, (pages + 1) // 2)
        written = 0
        for f in range((pages + per_file - 1) // per_file):
            recs = []
            for k in range(f * per_file, min(pages, (f + 1) * per_file)):
                title = " ".join(x.capitalize() for x in w.words(4)).replace(",", "")
                body = w.document(int(rng.integers(3, 7)))
                recs.append((f"https://news{k % 13}.example.com/{k}", _html_page(title, body, rng), k))
            rel = f"crawl/crawl-{f:05d}.warc.gz"
            _write_bytes(os.path.join(tmp, rel), _warc_bytes(recs))
            gt.files[rel] = 2 * len(recs)
            written += len(recs)
        gt.documents["crawl"] = written
        title = "Truncated Page"
        pages4 = [(f"https://trunc.example.com/{k}", _html_page(title, w.document(3), rng), 10_000 + k)
                  for k in range(4)]
        blob = _warc_bytes(pages4)
        whole3 = len(_warc_bytes(pages4[:3]))  # cut in the middle of the last page's records, never at a boundary
        _write_bytes(os.path.join(tmp, "crawl", "crawl-truncated.warc.gz"), blob[: whole3 + (len(blob) - whole3) // 2])
        gt.bad_records.append({"file": "crawl/crawl-truncated.warc.gz", "line": None,
                               "reason": "warc_truncated_record"})

    for done in written_shards:
        done.result()  # a failed write raises here

    def keyed(rid: str) -> list[str]:  # duplicates are planted in web, and wiki articles copied to web
        return ["wiki" if rid.startswith("wiki-") else "web", rid]

    for group in gt.exact_duplicates:
        gt.pairs += [[keyed(a), keyed(b), 1.0] for a, b in itertools.combinations(group, 2)]
    gt.pairs += [[keyed(a), keyed(b), float(j)] for a, b, j, *_ in gt.near_duplicates]
    with open(os.path.join(tmp, "ground_truth.json"), "w") as fh:
        json.dump(asdict(gt), fh, indent=1, sort_keys=True)
    with open(os.path.join(tmp, "_SUCCESS.json"), "w") as fh:
        knobs = {k: v for k, v in asdict(sc).items() if k not in ("dir", "enabled", "budget_tokens")}
        json.dump({"config_hash": config_hash(sc), "config": knobs}, fh, indent=1, sort_keys=True)
    if os.path.exists(out):
        old = out + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        os.rename(tmp, out)
    return gt


def _write_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as g:  # mtime=0: reproducible bytes
        g.write(data)
    return buf.getvalue()


def _write_gzip(path: str, data: bytes) -> None:
    _write_bytes(path, _gzip_bytes(data))


def _write_parquet(path: str, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=256)


def _warc_bytes(pages: list[tuple[str, bytes, int]]) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for url, html, k in pages:
        date = f"2026-01-{1 + k % 28:02d}T00:00:00Z"
        req = writer.create_warc_record(
            url, "request", payload=io.BytesIO(b""),
            http_headers=StatusAndHeaders(f"GET /{k} HTTP/1.1", [("Host", url.split("/")[2])], is_http_request=True),
            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-{2 * k:012d}>",
                               "WARC-Date": date})
        writer.write_record(req)
        resp = writer.create_warc_record(
            url, "response", payload=io.BytesIO(html),
            http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                     ("Content-Length", str(len(html)))], protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-{2 * k + 1:012d}>",
                               "WARC-Date": date})
        writer.write_record(resp)
    return buf.getvalue()
