"""PySpark's worker daemon, started without the Python-less archives on its ``sys.path``.

Spark puts the ``spark-core`` jar on every Python worker's ``PYTHONPATH`` (``PythonUtils.sparkPythonPath``), and
PySpark's worker calls ``importlib.invalidate_caches()`` at the start of every task (``worker_util.setup_spark_files``).
On Python 3.11 that makes each ``zipimporter`` on the path re-read its archive's whole directory: for the 5,362-entry
``spark-core_2.13-4.1.4.jar`` 57 ms per task and worker, for nothing — the jar holds no Python. Measured here on
2 cores: 40 empty Python tasks took 6.4 s (plain PySpark, no mixlake settings, same cost); see README, Benchmarks.
(Python 3.12 made ``zipimporter.invalidate_caches`` lazy; this stack is fixed at 3.11.)

Spark's own ``pyspark.zip`` (1,328 entries) is on the path too, ahead of the installed ``pyspark``: ~14 ms per task on
an idle machine, and most of what remained when the jar was gone.

This module is Spark's ``spark.python.daemon.module`` for the local sessions :func:`mixlake.spark.get_spark` builds.
Before it runs ``pyspark.daemon`` unchanged (the forked workers inherit the path), it removes from ``sys.path``

* every archive (``.jar``/``.zip``/``.egg`` file) that contains no Python module — archives that do hold Python
  (a ``--packages`` jar that ships Python, ``--py-files``) stay;
* ``pyspark.zip`` when another path entry has the same PySpark (byte-identical ``pyspark/version.py``): the installed
  package is then imported instead of the zipped copy of it.

Standard library only: it runs before any task.
"""

from __future__ import annotations

import os
import runpy
import sys
import zipfile

PYTHON_SUFFIXES = (".py", ".pyc", ".so", ".pyd")


def holds_python(path: str) -> bool:
    """Whether the archive at ``path`` has any importable file (an unreadable one is kept: not ours to judge)."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith(PYTHON_SUFFIXES) for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return True


def python_less_archives(paths: list[str]) -> list[str]:
    """The entries of ``paths`` that are archive files without a Python module in them."""
    return [p for p in paths if os.path.isfile(p) and p.endswith((".jar", ".zip", ".egg")) and not holds_python(p)]


def _zip_member(path: str, name: str) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as z:
            return z.read(name)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def redundant_pyspark_zips(paths: list[str]) -> list[str]:
    """``pyspark.zip`` entries of ``paths`` whose PySpark is also installed, the same version, in a directory entry."""
    installed = set()
    for p in paths:
        f = os.path.join(p, "pyspark", "version.py")
        if os.path.isdir(p) and os.path.isfile(f):
            with open(f, "rb") as fh:
                installed.add(fh.read())
    return [p for p in paths if os.path.basename(p) == "pyspark.zip" and os.path.isfile(p)
            and _zip_member(p, "pyspark/version.py") in installed]


def strip_slow_archives() -> list[str]:
    """Remove both kinds from ``sys.path`` and forget their cached importers; returns what was removed."""
    removed = python_less_archives(sys.path) + redundant_pyspark_zips(sys.path)
    for p in removed:
        while p in sys.path:
            sys.path.remove(p)
        sys.path_importer_cache.pop(p, None)
    return removed


if __name__ == "__main__":
    strip_slow_archives()
    runpy.run_module("pyspark.daemon", run_name="__main__", alter_sys=True)
