"""``python -m mixlake.class_archive [overrides]``: dump the JVM class-data-sharing archive local sessions start from
(see ``CLASS_ARCHIVE_PREFIX`` in :mod:`mixlake.spark`; ``make setup`` runs this once per Java and PySpark)."""

from __future__ import annotations

import os
import sys
import tempfile

from pyspark.sql import SparkSession

from mixlake.cli import main
from mixlake.config import compose
from mixlake.spark import CLASS_ARCHIVE_PREFIX, LOCAL_GC_OPTION, class_archive_path, default_ivy_dir, java_option


def write_class_archive(argv: list[str]) -> int:
    """Dump the class archive by running the built-in pipeline on a tiny sample in a temporary lake with
    ``-XX:ArchiveClassesAtExit``, so the archive holds the classes the stages load. The JVM writes it as it exits:
    this waits for that, then moves the file into place (a crash leaves no half-written archive behind)."""
    cfg = compose(argv).spark
    ivy = cfg.ivy or default_ivy_dir()
    path = class_archive_path(ivy) if ivy else None
    if path is None:
        print("no ivy dir or no java: no class archive written")
        return 0
    if path.is_file():
        print(f"class archive already written: {path}")
        return 0
    for old in path.parent.glob(f"{CLASS_ARCHIVE_PREFIX}*.jsa"):  # of an earlier Java or PySpark
        old.unlink()
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory() as d:
        code = main("pipeline", [f"lake={d}/lake", f"sample.dir={d}/sample", "sample.scale=0.01",
                                 "mds.empty_source=skip", "spark.class_archive=false",
                                 # quoted for Hydra: the value has a space
                                 f'spark.conf.spark.driver.defaultJavaOptions="{LOCAL_GC_OPTION} '
                                 # (cds*=error: not a warning line for each of the ~2,000 classes it skips)
                                 f'{java_option(f"-XX:ArchiveClassesAtExit={tmp}")} -Xlog:cds*=error"', *argv])
        spark = SparkSession.getActiveSession()
        if code != 0 or spark is None:
            raise SystemExit(f"the class archive's pipeline run failed (exit code {code})")
        jvm = spark.sparkContext._gateway.proc  # type: ignore[union-attr]
        spark.stop()
        jvm.stdin.close()  # the gateway exits on end of input; the JVM then writes the archive
        if jvm.wait(timeout=900) != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            raise SystemExit(f"the JVM did not write the class archive {tmp}")
    os.replace(tmp, path)
    print(f"class archive written: {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(write_class_archive(sys.argv[1:]))
