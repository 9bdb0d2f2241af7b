"""Reading finished runs for people: HTML reports with plots, and readable tokens."""

from __future__ import annotations

__all__ = ["write_report"]


def __getattr__(name: str):
    if name == "write_report":  # matplotlib is imported only when a report is written
        from motorec.reports.page import write_report

        return write_report
    raise AttributeError(name)
