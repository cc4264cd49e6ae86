"""What a stage reports back: counts that must add up, and where it wrote."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class StageResult:
    """``records_in = records_out + dropped + quarantined`` for every stage (checked by :meth:`check`)."""

    stage: str
    records_in: int = 0
    records_out: int = 0
    dropped: int = 0
    quarantined: int = 0
    outputs: dict[str, int | None] = field(default_factory=dict)  # table name -> Delta version written
    details: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def check(self) -> None:
        if self.records_in != self.records_out + self.dropped + self.quarantined:
            raise AssertionError(
                f"stage {self.stage}: accounting does not add up: in={self.records_in} out={self.records_out} "
                f"dropped={self.dropped} quarantined={self.quarantined}"
            )

    def line(self) -> str:
        return (f"[mixlake] {self.stage:<8} in={self.records_in:,} out={self.records_out:,} "
                f"dropped={self.dropped:,} quarantined={self.quarantined:,} ({self.seconds:.1f}s)")


class PhaseClock:
    """Wall seconds per phase of a stage, for ``details.phases`` and the log: :meth:`phase` closes the phase that
    began when the previous one ended (a name seen again adds to its total)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def phase(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 2)
        self._last = now

    def pairs(self) -> list[list[object]]:
        """``[name, seconds]`` in the order the phases first ran (the runs table stores details with sorted keys)."""
        return [[k, v] for k, v in self.seconds.items()]
