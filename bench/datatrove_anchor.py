"""datatrove 0.10's Gopher, C4 and FineWeb quality filters over the texts of a Parquet file, one process — the anchor
``bench/pipeline_bench.py`` prints beside mixlake's quality pass on the same documents. Runs in ``.venv-anchor``
(``bench/anchor-requirements.txt``), not in mixlake's environment.

Every filter runs on every document (a filter stops at its own first failing check, as in a datatrove pipeline, but
a document dropped by one filter still goes through the others), with the defaults datatrove documents for each.
Prints one JSON line: documents, seconds per filter and in all, documents each filter would drop.

``python bench/datatrove_anchor.py texts.parquet``
"""

from __future__ import annotations

import json
import sys
import time

import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)


def main() -> int:
    texts = pq.read_table(sys.argv[1], columns=["text"]).column("text").to_pylist()
    docs = [Document(text=t or "", id=str(i)) for i, t in enumerate(texts)]
    filters = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
    for f in filters:  # loads the word tokenizer (spaCy) before timing
        f.filter(Document(text="A warm-up sentence.", id="warm-up"))
    out: dict[str, object] = {"documents": len(docs), "filters": {}}
    start = time.perf_counter()
    for f in filters:
        t = time.perf_counter()
        dropped = 0
        for d in docs:
            verdict = f.filter(d)
            dropped += not (verdict[0] if isinstance(verdict, tuple) else verdict)
        s = time.perf_counter() - t
        out["filters"][type(f).__name__] = {"seconds": s, "docs_per_s": len(docs) / s, "dropped": dropped}
    out["seconds"] = time.perf_counter() - start
    out["docs_per_s"] = len(docs) / out["seconds"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
