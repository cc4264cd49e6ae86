"""How much data and which data: the mixture planner.

* Budget (Hoffmann et al. 2022, "Chinchilla"): training compute C ≈ 6·N·D; compute-optimal D ≈ 20·N, so given C,
  N = sqrt(C / (6·tpp)) (= sqrt(C/120) at tpp = 20) and D = tpp·N. Or D from ``model.params`` (D = tpp·N, with
  ``tokens_per_param`` overridable for LLaMA-style over-training), or ``budget.tokens`` directly.
* Strategy: explicit ``weights``; ``natural`` (∝ unique tokens); ``temperature`` (p ∝ n^(1/T), mT5); ``unimax``
  (Chung et al. 2023: uniform budget, smallest source first, each capped at ``max_epochs``, the rest redistributed).
* Epoch cap (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models"): up to ~4 epochs of repeated data
  is almost as good as new; value decays towards zero around 16. A source over ``max_epochs`` is capped and its
  excess redistributed to the others in proportion; a budget no cap-respecting mixture can fill fails, saying how
  many unique tokens exist and what budget fits.
* Effective tokens: D' = U + U·R*·(1 − exp(−R/R*)), R = epochs − 1 (repeated epochs), R* = 15.39 (the paper's fitted
  R_D*); for epochs ≤ 1 every drawn token is unique.

Pure Python: a plan has one row per source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mixlake.errors import ConfigError

R_STAR = 15.39  # Muennighoff et al. 2023, fitted R_D*
WARN_EPOCHS = 4.0
TINY_SHARE = 0.01


@dataclass
class MixtureConfig:
    """``mixture`` group."""

    strategy: str = "natural"  # weights | natural | temperature | unimax
    weights: dict[str, float] = field(default_factory=dict)
    temperature: float = 2.0
    max_epochs: float | None = 4.0  # null: no cap
    tokens_per_param: float = 20.0
    model_params: float | None = None  # N
    budget_flops: float | None = None  # C
    budget_tokens: float | None = None  # D
    ladder: list[float] = field(default_factory=list)  # model sizes: one plan each (D = tpp·N)


@dataclass
class SourcePlan:
    source: str
    unique_tokens: float
    proportion: float
    tokens: float
    epochs: float
    effective_tokens: float
    flags: list[str]
    note: str = ""


@dataclass
class Plan:
    model_params: float | None
    budget_tokens: float
    budget_flops: float | None
    strategy: str
    max_epochs: float | None
    rows: list[SourcePlan]
    notes: list[str]


def chinchilla_params_for_flops(flops: float, tokens_per_param: float = 20.0) -> float:
    """N = sqrt(C / (6·tpp)): compute-optimal parameters for compute C (C ≈ 6·N·D, D = tpp·N)."""
    return math.sqrt(flops / (6.0 * tokens_per_param))


def budget(cfg: MixtureConfig) -> tuple[float | None, float, float | None]:
    """(N, D, C) from exactly one of model_params / budget_flops / budget_tokens."""
    given = [k for k in ("model_params", "budget_flops", "budget_tokens") if getattr(cfg, k) is not None]
    if len(given) != 1:
        raise ConfigError("set exactly one of 'mixture.model_params', 'mixture.budget_flops', "
                          f"'mixture.budget_tokens' (got {given or 'none'})")
    tpp = cfg.tokens_per_param
    if cfg.model_params is not None:
        n = float(cfg.model_params)
        return n, tpp * n, 6.0 * n * tpp * n
    if cfg.budget_flops is not None:
        c = float(cfg.budget_flops)
        n = chinchilla_params_for_flops(c, tpp)
        return n, tpp * n, c
    d = float(cfg.budget_tokens)  # type: ignore[arg-type]
    return None, d, None


def effective_tokens(unique: float, epochs: float) -> float:
    """Muennighoff et al.'s effective data for ``epochs`` passes over ``unique`` tokens."""
    if epochs <= 1.0:
        return unique * epochs
    r = epochs - 1.0
    return unique + unique * R_STAR * (1.0 - math.exp(-r / R_STAR))


def base_proportions(unique: dict[str, float], cfg: MixtureConfig) -> dict[str, float]:
    names = sorted(unique)
    if cfg.strategy == "weights":
        missing = [n for n in names if n not in cfg.weights]
        extra = [k for k in cfg.weights if k not in unique]
        if missing or extra:
            raise ConfigError(f"'mixture.weights' must name every source exactly: missing {missing}, unknown {extra}")
        w = {n: float(cfg.weights[n]) for n in names}
    elif cfg.strategy == "natural":
        w = dict(unique)
    elif cfg.strategy == "temperature":
        if cfg.temperature <= 0:
            raise ConfigError("'mixture.temperature' must be > 0")
        w = {n: unique[n] ** (1.0 / cfg.temperature) for n in names}
    else:
        raise ConfigError(f"'mixture.strategy' {cfg.strategy!r} is not weights|natural|temperature|unimax")
    total = sum(w.values())
    if total <= 0 or any(v < 0 for v in w.values()):
        raise ConfigError("mixture weights must be non-negative and not all zero")
    return {n: v / total for n, v in w.items()}


def unimax_tokens(unique: dict[str, float], total: float, max_epochs: float | None) -> dict[str, float]:
    """UniMax: smallest source first, each gets min(fair share of what is left, max_epochs·U)."""
    left = total
    out: dict[str, float] = {}
    order = sorted(unique, key=lambda n: (unique[n], n))
    for i, n in enumerate(order):
        fair = left / (len(order) - i)
        cap = math.inf if max_epochs is None else max_epochs * unique[n]
        out[n] = min(fair, cap)
        left -= out[n]
    return out


def cap_and_redistribute(unique: dict[str, float], props: dict[str, float], total: float,
                         max_epochs: float | None) -> tuple[dict[str, float], set[str]]:
    """Tokens per source from proportions, each capped at max_epochs·U, excess redistributed in proportion."""
    if max_epochs is None:
        return {n: p * total for n, p in props.items()}, set()
    capped: set[str] = set()
    tokens = {n: p * total for n, p in props.items()}
    for _ in range(len(props) + 1):
        over = {n for n, t in tokens.items() if n not in capped and t > max_epochs * unique[n] * (1 + 1e-12)}
        if not over:
            break
        capped |= over
        fixed = sum(max_epochs * unique[n] for n in capped)
        free = {n: props[n] for n in props if n not in capped}
        share = sum(free.values())
        rest = total - fixed
        tokens = {n: max_epochs * unique[n] for n in capped}
        tokens.update({n: rest * p / share for n, p in free.items()} if share > 0 else {})
    return tokens, capped


def plan_mixture(unique: dict[str, float], cfg: MixtureConfig, model_params: float | None = None) -> Plan:
    """One plan for the budget in ``cfg`` (or, with ``model_params``, for that model size)."""
    if not unique:
        raise ConfigError("no sources with tokens to plan a mixture over")
    if any(u <= 0 for u in unique.values()):
        empty = sorted(n for n, u in unique.items() if u <= 0)
        raise ConfigError(f"sources with no tokens cannot be mixed: {empty}")
    if model_params is not None:
        n, d, c = model_params, cfg.tokens_per_param * model_params, 6.0 * model_params * cfg.tokens_per_param * \
            model_params
    else:
        n, d, c = budget(cfg)
    total_unique = sum(unique.values())
    notes: list[str] = []
    if cfg.max_epochs is not None:
        capacity = cfg.max_epochs * total_unique
        if d > capacity * (1 + 1e-9):
            raise ConfigError(
                f"budget of {d:,.0f} tokens exceeds every source at max_epochs={cfg.max_epochs:g}: "
                f"{total_unique:,.0f} unique tokens exist, so at most {capacity:,.0f} tokens fit "
                f"(a model of at most {capacity / cfg.tokens_per_param:,.0f} parameters at "
                f"{cfg.tokens_per_param:g} tokens/parameter); raise mixture.max_epochs or add data")
    if cfg.strategy == "unimax":
        tokens = unimax_tokens(unique, d, cfg.max_epochs)
        capped = {s for s, t in tokens.items() if cfg.max_epochs is not None and
                  t >= cfg.max_epochs * unique[s] * (1 - 1e-12)}
        wanted = {s: d / len(unique) for s in unique}
    else:
        props = base_proportions(unique, cfg)
        wanted = {s: p * d for s, p in props.items()}
        tokens, capped = cap_and_redistribute(unique, props, d, cfg.max_epochs)
    for s in sorted(capped):
        if wanted[s] > tokens[s] * (1 + 1e-9):
            notes.append(f"{s}: wanted {wanted[s] / unique[s]:.2f} epochs, capped at {cfg.max_epochs:g}; "
                         f"{wanted[s] - tokens[s]:,.0f} tokens redistributed to the other sources in proportion")
    rows = []
    for s in sorted(unique):
        t = tokens[s]
        ep = t / unique[s]
        flags = []
        if s in capped and wanted[s] > t * (1 + 1e-9):
            flags.append("capped")
        if ep > WARN_EPOCHS + 1e-9:
            flags.append("many_epochs")
        if t / d < TINY_SHARE:
            flags.append("tiny_share")
        rows.append(SourcePlan(s, unique[s], t / d, t, ep, effective_tokens(unique[s], ep), flags))
    return Plan(n, d, c, cfg.strategy, cfg.max_epochs, rows, notes)


def plan_ladder(unique: dict[str, float], cfg: MixtureConfig) -> list[Plan]:
    """The main plan, then one per ``ladder`` model size (same strategy and weights): start small, work up."""
    plans = [plan_mixture(unique, cfg)]
    plans += [plan_mixture(unique, cfg, model_params=float(n)) for n in cfg.ladder]
    return plans


def _fmt(x: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f} {unit}"
    return f"{x:.0f}"


def plan_markdown(plan: Plan) -> str:
    """The MPT-style table: source, tokens available, proportion, tokens used, epochs (+ effective, flags)."""
    head = f"Budget: {_fmt(plan.budget_tokens)} tokens"
    if plan.model_params:
        head += f" for a {_fmt(plan.model_params)}-parameter model"
    if plan.budget_flops:
        head += f" ({plan.budget_flops:.3g} FLOPs)"
    head += f"; strategy `{plan.strategy}`, max epochs {plan.max_epochs if plan.max_epochs is not None else 'none'}"
    lines = [head, "", "| source | tokens available | proportion | tokens used | epochs | effective tokens | flags |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in plan.rows:
        lines.append(f"| {r.source} | {_fmt(r.unique_tokens)} | {r.proportion:.3f} | {_fmt(r.tokens)} | "
                     f"{r.epochs:.2f} | {_fmt(r.effective_tokens)} | {', '.join(r.flags)} |")
    lines += [f"\n- {n}" for n in plan.notes]
    return "\n".join(lines) + "\n"
