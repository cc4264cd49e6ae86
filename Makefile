# mixlake — the README's two commands are the contract:  make setup && make run ;  make test
SHELL := /bin/bash
PY ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
export MIXLAKE_IVY := $(CURDIR)/.ivy
export PYSPARK_PYTHON := $(CURDIR)/$(PYTHON)
ARGS ?=

.PHONY: setup class-archive run test test-fast test-cross-model cluster-test lint bench bench-anchors clean java dist

setup: java $(VENV)/.installed .ivy/mixlake-jars.json class-archive  ## venv + package + test extras + JVM jars and class archive in ./.ivy

java:
	@command -v java >/dev/null || { echo "mixlake needs Java 17 (apt-get install openjdk-17-jre-headless)"; exit 1; }

$(VENV)/.installed: setup.py
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e ".[test,bench]"
	touch $@

# Resolves every JVM package set (Delta; Delta + hadoop-aws for S3) into ./.ivy once and records the jar list, so later sessions and tests
# start without ivy resolution or network.
.ivy/mixlake-jars.json: $(VENV)/.installed conf/spark/local.yaml
	$(PYTHON) -m mixlake.spark
	$(PYTHON) -m mixlake.spark spark.s3=true

# The JVM class-data-sharing archive local sessions start from (session start ~3.5 s faster): dumped once per Java and
# PySpark by the pipeline on a tiny sample (~2.5 min); a no-op when this Java's and PySpark's archive exists.
class-archive: .ivy/mixlake-jars.json
	$(PYTHON) -m mixlake.class_archive

run:  ## the whole pipeline on the built-in sample corpus into ./lake
	$(PYTHON) jobs/pipeline.py $(ARGS)

test:  ## the test suite (one shared local[2] Spark session)
	$(PYTHON) -m pytest -q tests $(ARGS)

test-fast:  ## the inner loop: everything but the standalone-cluster, S3 and slow (extra JVM) tests
	$(PYTHON) -m pytest -q -m "not cluster and not s3 and not slow" tests $(ARGS)

test-cross-model:  ## the cluster, executor-kill and S3 pipeline comparisons with the learned quality model on (21 min, 2026-11-29)
	MIXLAKE_TEST_QUALITY_MODEL=1 $(PYTHON) -m pytest -q tests/test_cluster.py tests/test_s3.py $(ARGS)

cluster-test:  ## the pipeline on a Spark standalone cluster on 127.0.0.1 (+ executor kills) vs local mode
	$(PYTHON) -m pytest -q -m cluster tests $(ARGS)

lint:
	$(VENV)/bin/ruff check lib jobs tests bench conf setup.py

bench-anchors: .venv-anchor/.installed  ## datatrove 0.10 in its own venv, the quality anchor of bench/pipeline_bench.py

.venv-anchor/.installed: bench/anchor-requirements.txt
	$(PY) -m venv .venv-anchor
	.venv-anchor/bin/python -m pip install -q -r bench/anchor-requirements.txt
	touch $@

bench: bench-anchors  ## benchmarks; prints ratios and writes bench/results/*.json (dedup at 100K and 1M documents: ~1 h here)
# the whole pipeline runs at sample.scale 0.01 and 20; PIPELINE_BENCH_ARGS="--scales 0.01 20 200" adds ~1M documents
	$(PYTHON) bench/extract_bench.py
	$(PYTHON) bench/bench_langid.py
	$(PYTHON) bench/dedup_bench.py $(BENCH_ARGS)
	$(PYTHON) bench/stages_bench.py
	$(PYTHON) bench/decontam_bench.py
	$(PYTHON) bench/quality_model_bench.py
	$(PYTHON) bench/semdedup_bench.py
	$(PYTHON) bench/pipeline_bench.py $(PIPELINE_BENCH_ARGS)

dist:  ## wheel of mixlake with its Hydra configs inside (for spark-submit --py-files or cluster libraries)
	rm -rf dist build
	$(PYTHON) -m pip wheel --no-deps -q -w dist .

clean:
	rm -rf lake spark-warehouse metastore_db derby.log
