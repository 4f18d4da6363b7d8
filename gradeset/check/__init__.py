"""Dataset checks and the self-contained HTML report (``gradeset check``).

Library use::

    from gradeset.check import CheckConfig, run_checks, write_report
    report = run_checks(groups, CheckConfig(group_size=16, min_coverage=0.8))
    if report.failed: ...
    write_report(report, "report.html")

``collect_stats(groups)`` describes any pipeline stage without running the checks;
``CheckRunner`` is the incremental form (``add`` groups, then ``finish``).
"""

from gradeset.check.checks import CHECKS, CheckReport, CheckResult, CheckRunner, Example, run_checks
from gradeset.check.config import CheckConfig
from gradeset.check.report import render_report, write_report
from gradeset.check.stats import DatasetStats, collect_stats

__all__ = ["CHECKS", "CheckConfig", "CheckReport", "CheckResult", "CheckRunner", "DatasetStats", "Example",
           "collect_stats", "render_report", "run_checks", "write_report"]
