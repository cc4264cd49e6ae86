"""Stage `eval_semdedup` as a job (`python jobs/eval_semdedup.py key=value ...`, or the same under spark-submit)."""

import sys

from mixlake.cli import main

if __name__ == "__main__":
    sys.exit(main("eval_semdedup"))
