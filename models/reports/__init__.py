"""Monthly reports (月度报告): the figures of a scope's month, rendered, and published frozen in versions.

figures.py gathers a month's figures into one JSON-able dict (indicators, rankings, 约谈 flags,
concentrated problems, overdue cases); render.py draws it as HTML, CSV and XLSX; records.py is the
table of published versions; publish.py publishes and corrects. docs/reports.md explains the rules.
"""
