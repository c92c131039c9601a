"""What a conversion could not carry, or carried in a changed form: never dropped silently."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field


@dataclass
class ConversionReport:
    """Rows of (part, what happened, detail). ``dropped`` parts are missing from the result."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def dropped(self, part: str, why: str) -> None:
        self.rows.append((part, "not carried", why))

    def changed(self, part: str, how: str) -> None:
        self.rows.append((part, "changed", how))

    def extend(self, other: "ConversionReport") -> None:
        self.rows.extend(other.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __str__(self) -> str:
        return "\n".join(f"- {part}: {status} ({detail})" for part, status, detail in self.rows)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "part": [r[0] for r in self.rows],
            "status": [r[1] for r in self.rows],
            "detail": [r[2] for r in self.rows],
        }

    def warn(self, direction: str) -> None:
        if self.rows:
            warnings.warn(f"isthmus {direction}: some parts were not carried as they were:\n{self}", stacklevel=3)
