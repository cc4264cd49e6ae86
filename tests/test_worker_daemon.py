"""The Python worker daemon of local sessions: which archives leave ``sys.path``, and that real workers run
without them."""

from __future__ import annotations

import glob
import os
import sys
import zipfile
from pathlib import Path

import pyspark

from mixlake.spark import WORKER_DAEMON
from mixlake.worker_daemon import python_less_archives, redundant_pyspark_zips


def _zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def test_only_archives_without_python_are_flagged(tmp_path: Path) -> None:
    classes = _zip(tmp_path / "classes.jar", {"org/x/A.class": b"\xca\xfe", "META-INF/MANIFEST.MF": b""})
    with_py = _zip(tmp_path / "graphframes.jar", {"org/x/A.class": b"", "graphframes/__init__.py": b""})
    compiled = _zip(tmp_path / "lib.zip", {"m.pyc": b""})
    broken = tmp_path / "broken.jar"
    broken.write_bytes(b"not a zip")
    directory = tmp_path / "dir.jar"
    directory.mkdir()
    paths = [classes, with_py, compiled, str(broken), str(directory), str(tmp_path / "missing.jar")]
    assert python_less_archives(paths) == [classes]


def test_the_real_spark_core_jar_has_no_python() -> None:
    jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "spark-core_*.jar"))
    assert jars, "pyspark ships its spark-core jar"
    assert python_less_archives(jars) == jars


def test_pyspark_zip_is_dropped_only_when_the_same_pyspark_is_installed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "pyspark").mkdir(parents=True)
    (site / "pyspark" / "version.py").write_bytes(b'__version__ = "4.1.4"\n')
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    same = _zip(tmp_path / "a" / "pyspark.zip", {"pyspark/version.py": b'__version__ = "4.1.4"\n'})
    other = _zip(tmp_path / "b" / "pyspark.zip", {"pyspark/version.py": b'__version__ = "4.0.0"\n'})
    assert redundant_pyspark_zips([same, other, str(site)]) == [same]
    assert redundant_pyspark_zips([same]) == []  # nothing else provides pyspark: the zip stays


def test_local_workers_run_without_the_slow_archives(spark) -> None:
    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == WORKER_DAEMON

    def probe(_: object) -> tuple[list[str], str]:
        import pyspark as worker_pyspark

        return [p for p in sys.path if p.endswith((".jar", ".zip"))], worker_pyspark.__file__

    archives, pyspark_file = spark.sparkContext.parallelize([0], 1).map(probe).collect()[0]
    assert not [p for p in archives if p.endswith(".jar") or os.path.basename(p) == "pyspark.zip"], archives
    assert ".zip" not in pyspark_file and os.path.isfile(pyspark_file)
    # Arrow-based Python tasks (what the stages use) work as before
    df = spark.range(0, 8, 1, 4).mapInArrow(lambda batches: (b for b in batches), "id long")
    assert sorted(r.id for r in df.collect()) == list(range(8))


def test_local_sessions_run_the_parallel_collector_unless_the_user_picks_options(spark) -> None:
    from mixlake.spark import LOCAL_GC_OPTION, local_jvm_options

    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    assert {b.getName() for b in beans} == {"PS Scavenge", "PS MarkSweep"}  # the JVM the test session launched
    assert local_jvm_options({}) == {"spark.driver.defaultJavaOptions": LOCAL_GC_OPTION}
    # a user's JVM options still apply (Spark appends extraJavaOptions to the defaults) ...
    assert local_jvm_options({"spark.driver.extraJavaOptions": "-Xss4m"}) == {
        "spark.driver.defaultJavaOptions": LOCAL_GC_OPTION}
    # ... and a collector or defaults of their own replace ours (two collector flags stop the JVM)
    assert local_jvm_options({"spark.driver.extraJavaOptions": "-Xss4m -XX:+UseG1GC"}) == {}
    assert local_jvm_options({"spark.driver.defaultJavaOptions": "-Xss4m"}) == {}


def test_local_sessions_map_the_class_archive_unless_the_user_picks_options(tmp_path: Path) -> None:
    from mixlake.spark import LOCAL_GC_OPTION, local_jvm_options

    jsa = "/x/mixlake-classes-0123.jsa"
    assert local_jvm_options({}, jsa) == {"spark.driver.defaultJavaOptions":
                                          f"{LOCAL_GC_OPTION} -XX:SharedArchiveFile={jsa}"}
    # the user's collector replaces ours, the archive stays (a dynamic archive holds no heap objects: any collector)
    assert local_jvm_options({"spark.driver.extraJavaOptions": "-XX:+UseG1GC"}, jsa) == {
        "spark.driver.defaultJavaOptions": f"-XX:SharedArchiveFile={jsa}"}
    assert local_jvm_options({"spark.driver.defaultJavaOptions": "-Xss4m"}, jsa) == {}
    # Spark splits Java options on spaces outside double quotes
    assert local_jvm_options({}, "/my dir/a.jsa") == {
        "spark.driver.defaultJavaOptions": f'{LOCAL_GC_OPTION} "-XX:SharedArchiveFile=/my dir/a.jsa"'}


def test_the_class_archive_follows_java_and_pyspark_and_the_config(tmp_path: Path, monkeypatch) -> None:
    from mixlake.config import SparkConfig
    from mixlake.spark import CLASS_ARCHIVE_PREFIX, class_archive_path, existing_class_archive

    path = class_archive_path(str(tmp_path))
    assert path is not None and path.parent == tmp_path and path.name.startswith(CLASS_ARCHIVE_PREFIX)
    assert existing_class_archive(SparkConfig(), str(tmp_path)) is None  # not written: no option
    path.write_bytes(b"")
    assert existing_class_archive(SparkConfig(), str(tmp_path)) == str(path)
    assert existing_class_archive(SparkConfig(class_archive=False), str(tmp_path)) is None
    # another Java gets another archive name (its archive would not match this JVM)
    fake_home = tmp_path / "jdk"
    (fake_home / "bin").mkdir(parents=True)
    (fake_home / "bin" / "java").write_text("")
    monkeypatch.setenv("JAVA_HOME", str(fake_home))
    other = class_archive_path(str(tmp_path))
    assert other is not None and other != path


def test_the_test_session_maps_the_class_archive_make_setup_wrote(spark) -> None:
    """The archive is real and this JVM uses it: its file is mapped into the JVM's address space (a JVM that rejects
    an archive — another classpath, another Java — unmaps it and loads every class from the jars)."""
    from mixlake.config import SparkConfig
    from mixlake.spark import default_ivy_dir, existing_class_archive

    archive = existing_class_archive(SparkConfig(), default_ivy_dir())
    assert archive is not None, "no class archive: run make setup (python -m mixlake.class_archive)"
    jvm = spark.sparkContext._jvm
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={archive}" in args
    pid = jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/maps") as f:
        assert archive in f.read()
