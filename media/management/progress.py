"""A progress bar for the media commands (one line, redrawn; plain lines when the output
is not a terminal)."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    def __init__(self, out: TextIO, total: int, label: str, width: int = 30) -> None:
        self.out, self.total, self.label, self.width = out, total, label, width
        self.done = 0
        self.tty = out.isatty() if hasattr(out, "isatty") else False
        self._last_line_pct = -1

    def advance(self, count: int = 1) -> None:
        self.done += count
        pct = 100 * self.done // self.total if self.total else 100
        filled = self.width * self.done // self.total if self.total else self.width
        line = (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
        )
        if self.tty:
            self.out.write(f"\r{line}")
            if self.done >= self.total:
                self.out.write("\n")
        elif pct // 10 != self._last_line_pct // 10 or self.done >= self.total:
            self.out.write(f"{line}\n")  # every 10 %, so logs stay short
            self._last_line_pct = pct
        self.out.flush()
