"""Connected components of an edge DataFrame, at cluster scale: alternating large-star / small-star.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014); the same algorithm text-dedup's Spark
MinHash script uses. Each round is two groupBy + join passes over the edges; the number of rounds is O(log² n) in
theory and, since LSH edges are already stars around bucket minima, typically 2–5 here. No driver-side union-find:
nothing but counts reaches the driver. Each round's edges are materialised — by the caller's ``persist`` (the dedup
stage writes Parquet on the lake) or a checkpoint — so the lineage does not grow and a lost executor does not
recompute from the start.

Convergence is the algorithm's real fixed point, checked on the edges after each round: **every node has exactly one
parent and every parent is a root** (no parent has a parent of its own). The edge set is then a forest of stars, one
per component, each centred on its component's smallest id. The weaker test "no edge's target is the source of an
edge" (used before, and by some public implementations) also holds when a node still hangs under two roots — edges
``(2,4) (0,4) (3,1) (2,3)`` stop there with node 2 in two components (``test_components_regression_two_parents``).

GraphFrames' ``connectedComponents`` (the usual library choice) is not served by the Maven Central this project
builds from (``io.graphframes:graphframes-spark4_2.13``), hence this DataFrame implementation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


def _large_star(edges: DataFrame) -> DataFrame:
    """Connect every strictly larger neighbour of u to the minimum of u's closed neighbourhood."""
    both = edges.unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    mins = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    return (both.join(mins, "u").filter(F.col("v") > F.col("u"))
            .select(F.col("v").alias("u"), F.col("m").alias("v")).distinct())


def _small_star(edges: DataFrame) -> DataFrame:
    """Connect u and all its smaller neighbours to the minimum of them."""
    directed = edges.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v"))
    mins = directed.groupBy("u").agg(F.min("v").alias("m"))
    neighbours = directed.join(mins, "u").select(F.col("v").alias("u"), F.col("m").alias("v"))
    own = mins.select("u", F.col("m").alias("v"))
    return neighbours.unionByName(own).filter(F.col("u") != F.col("v")).distinct()


def is_star_forest(edges: DataFrame) -> bool:
    """``edges(u, v)`` (u > v) form disjoint stars: each u has exactly one parent v, and no v is itself a child."""
    parents = edges.groupBy("u").agg(F.countDistinct("v").alias("n_parents"))
    two_parents = parents.filter(F.col("n_parents") > 1).select(F.col("u").alias("node"))
    parent_has_parent = (edges.select(F.col("v").alias("u")).join(parents, "u", "left_semi")
                         .select(F.col("u").alias("node")))
    return two_parents.unionByName(parent_has_parent).limit(1).count() == 0  # one job


@dataclass
class Components:
    """``members(node, component)``: every node on an edge exactly once, ``component`` = its component's smallest
    id; ``rounds``: large-star/small-star rounds until the fixed point."""

    members: DataFrame
    rounds: int


def connected_components(edges: DataFrame, max_iterations: int = 40,
                         persist: Callable[[DataFrame, str], DataFrame] | None = None) -> Components:
    """``edges(src, dst)`` (undirected, any comparable id type) → :class:`Components`. Raises when the fixed point is
    not reached in ``max_iterations`` rounds (``dedup.cc_max_iterations``). ``persist(df, name)`` materialises each
    round's edges (the dedup stage writes them as Parquet on the lake: one job, where a reliable ``checkpoint()``
    computes the round twice — once to count, once to write); default: a checkpoint."""
    e = (edges.select(F.col("src").alias("u"), F.col("dst").alias("v")).filter(F.col("u") != F.col("v"))
         .select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v")).distinct())
    reliable = edges.sparkSession.sparkContext.getCheckpointDir() is not None
    rounds = 0
    for rounds in range(1, max_iterations + 1):
        e = _small_star(_large_star(e))
        # without persist: reliable checkpoints when the session has a checkpoint dir (they survive a lost
        # executor), else local ones (library use in a notebook) — either cuts the lineage.
        if persist is not None:
            e = persist(e, f"components_round_{rounds}")
        else:
            e = e.checkpoint() if reliable else e.localCheckpoint()
        done = is_star_forest(e)
        log.info("connected components: round %d, star forest=%s", rounds, done)
        if done:
            break
    else:
        raise RuntimeError(f"connected components did not converge in {max_iterations} rounds "
                           "(raise dedup.cc_max_iterations)")
    roots = e.select(F.col("v").alias("node")).distinct().withColumn("component", F.col("node"))
    members = e.select(F.col("u").alias("node"), F.col("v").alias("component"))
    return Components(members=members.unionByName(roots), rounds=rounds)
