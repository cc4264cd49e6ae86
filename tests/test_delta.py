"""Delta helpers on real Delta tables: row counts read from a commit agree with the table's rows."""

from __future__ import annotations

from pyspark.sql import functions as F

from mixlake.delta import committed_rows, replace_table, replace_where, table_rows, table_version


def _counts(spark, path: str, version: int, by: str | None) -> dict:
    df = spark.read.format("delta").option("versionAsOf", version).load(path)
    if by is None:
        return {None: df.count()}
    return {r[0]: r[1] for r in df.groupBy(by).count().collect()}


def test_committed_rows_are_the_tables_rows_or_none(spark, tmp_path):
    path = str(tmp_path / "t")
    df = spark.range(0, 5000, numPartitions=3).select(
        F.col("id"), F.when(F.col("id") % 7 == 0, "a").when(F.col("id") % 3 == 0, "b").otherwise("c").alias("src"))
    replace_table(df, path, partition_by=["src"])
    v = table_version(spark, path)
    assert committed_rows(spark, path, v, "src") == _counts(spark, path, v, "src") == {"a": 715, "b": 1428, "c": 2857}
    assert committed_rows(spark, path, v) == {None: 5000}

    # replaceWhere: the commit's rows are the replaced partition's, the others are untouched
    replace_where(spark.range(0, 40).select("id", F.lit("b").alias("src")), path, "src = 'b'", partition_by=["src"])
    v = table_version(spark, path)
    assert committed_rows(spark, path, v, "src") is None  # not the whole table's rows
    assert committed_rows(spark, path, v, "src", replaced_only=True) == {"b": 40}
    assert table_rows(spark, path, v, "src", where="src = 'b'") == {"b": 40}
    assert table_rows(spark, path, v, "src") == _counts(spark, path, v, "src") == {"a": 715, "b": 40, "c": 2857}

    # a commit that is not an overwrite (compaction, append) cannot say: the table is counted instead
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, path).optimize().executeCompaction()
    v = table_version(spark, path)
    assert committed_rows(spark, path, v, "src") is None
    assert table_rows(spark, path, v, "src") == _counts(spark, path, v, "src")
    spark.range(0, 10).select("id", F.lit("a").alias("src")).write.format("delta").mode("append").save(path)
    v = table_version(spark, path)
    assert committed_rows(spark, path, v, "src") is None
    assert table_rows(spark, path, v, "src") == {"a": 725, "b": 40, "c": 2857}

    # files written without statistics: counted too
    spark.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        replace_table(df, path, partition_by=["src"])
    finally:
        spark.conf.unset("spark.databricks.delta.stats.collect")
    v = table_version(spark, path)
    assert committed_rows(spark, path, v, "src") is None
    assert table_rows(spark, path, v, "src") == {"a": 715, "b": 1428, "c": 2857}
    assert table_rows(spark, path, v) == {None: 5000}
    assert committed_rows(spark, str(tmp_path / "none"), 0) is None

    # a commit without commitInfo (optional in Delta's protocol) cannot show it was an overwrite: this run's own
    # first commit, an overwrite, with that line removed
    first = [ln for ln in (tmp_path / "t" / "_delta_log" / f"{0:020d}.json").read_text().splitlines() if ln.strip()]
    assert committed_rows(spark, path, 0, "src") == {"a": 715, "b": 1428, "c": 2857}
    bare = tmp_path / "bare" / "_delta_log"
    bare.mkdir(parents=True)
    (bare / f"{0:020d}.json").write_text("\n".join(ln for ln in first if '"commitInfo"' not in ln) + "\n")
    assert committed_rows(spark, str(tmp_path / "bare"), 0, "src") is None
