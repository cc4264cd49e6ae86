"""mixlake: Hydra-configured PySpark batch jobs that turn raw web crawls and curated sources into LLM pretraining
data. Library code is pure DataFrame → DataFrame transforms grouped by stage; ``mixlake.stages`` wires them to
Delta tables; ``jobs/`` are thin entry points."""

__version__ = "0.1.0"
