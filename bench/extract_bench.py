"""HTML → text extractor benchmark on real pages: resiliparse vs trafilatura (single process, same pages).

Reads ``../shared/realdata/html/trafilatura/*.html`` (110 real pages); prints MB/s and pages/s for each extractor,
the ratio, and how much text each keeps; writes ``bench/results/extract.json``. Skips when the folder is absent.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

from mixlake.ingest.readers import html_to_text

HTML_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "realdata", "html", "trafilatura")


def main() -> int:
    files = sorted(glob.glob(os.path.join(HTML_DIR, "*.html")))
    if not files:
        print(f"extract_bench: skipped, no pages under {HTML_DIR}")
        return 0
    pages = []
    for f in files:
        with open(f, "rb") as fh:
            pages.append(fh.read())
    mb = sum(map(len, pages)) / 1e6
    results = {}
    for name in ("resiliparse", "trafilatura"):
        html_to_text(pages[0], name)  # warm-up (imports, model loading)
        t0 = time.perf_counter()
        texts = [html_to_text(p, name) for p in pages]
        dt = time.perf_counter() - t0
        results[name] = {"seconds": dt, "mb_per_s": mb / dt, "pages_per_s": len(pages) / dt,
                         "chars_kept": sum(map(len, texts)), "empty_pages": sum(1 for t in texts if not t.strip())}
    ratio = results["resiliparse"]["mb_per_s"] / results["trafilatura"]["mb_per_s"]
    print(f"{'extractor':<12} {'MB/s':>8} {'pages/s':>8} {'chars kept':>11} {'empty':>6}", end="")
    print(f"   ({len(pages)} pages, {mb:.1f} MB)")
    for name, r in results.items():
        print(f"{name:<12} {r['mb_per_s']:8.2f} {r['pages_per_s']:8.1f} {r['chars_kept']:11,} {r['empty_pages']:6}")
    print(f"resiliparse / trafilatura throughput ratio: {ratio:.1f}x")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "extract.json"), "w") as f:
        json.dump({"pages": len(pages), "mb": mb, "results": results, "ratio_resiliparse_over_trafilatura": ratio}, f,
                  indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
