"""Reports (metrics, tables, figures) and the one plotting module behind every figure."""

from recsys.reporting.reports import Report, retention_report, segment_report

__all__ = ["Report", "retention_report", "segment_report"]
