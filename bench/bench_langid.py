"""Language identification candidates on real pages: lingua (Rust, models in the wheel) vs langid.py (models in the
package), both offline. Labels are the pages' own ``<html lang="…">`` attributes (pages without one are skipped);
text is extracted with resiliparse as ingest does. Prints accuracy and docs/s; writes ``bench/results/langid.json``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time

from mixlake.ingest.readers import html_to_text

HERE = os.path.dirname(os.path.abspath(__file__))
HTML_DIR = os.path.join(HERE, "..", "..", "shared", "realdata", "html", "trafilatura")
LANG_ATTR = re.compile(rb"<html[^>]*\blang=[\"']?([a-zA-Z]{2})", re.I)


def labelled_pages() -> list[tuple[str, str]]:
    out = []
    for f in sorted(glob.glob(os.path.join(HTML_DIR, "*.html"))):
        with open(f, "rb") as fh:
            raw = fh.read()
        m = LANG_ATTR.search(raw[:5000])
        text = html_to_text(raw, "resiliparse")
        if m and len(text.split()) >= 20:
            out.append((m.group(1).decode().lower(), text))
    return out


def main() -> int:
    from mixlake.quality.langid import detect_languages

    pages = labelled_pages()
    if not pages:
        print(f"langid_bench: skipped, no labelled pages under {HTML_DIR}")
        return 0
    labels = [lang for lang, _ in pages]
    texts = [t for _, t in pages]
    results = {}
    for backend in ("lingua", "langid"):
        detect_languages(texts[:2], backend)  # warm-up / model load
        t0 = time.perf_counter()
        preds = detect_languages(texts, backend)
        dt = time.perf_counter() - t0
        acc = sum(p[0] == gold for p, gold in zip(preds, labels, strict=True)) / len(labels)
        results[backend] = {"accuracy": acc, "docs_per_s": len(texts) / dt, "seconds": dt}
        print(f"{backend:<8} accuracy {acc:.3f}  {len(texts) / dt:8.1f} docs/s")
    counts: dict[str, int] = {}
    for lang in labels:
        counts[lang] = counts.get(lang, 0) + 1
    print(f"{len(labels)} labelled pages: {counts}")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "langid.json"), "w") as f:
        json.dump({"pages": len(labels), "labels": counts, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
