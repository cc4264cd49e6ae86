"""What a stage reports back: counts that must add up, and where it wrote."""

from __future__ import annotations

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
