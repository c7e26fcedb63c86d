"""Cases in the national data sets of GB/T 39046-2020《政务服务平台基础数据规范》.

表10 (§6.7, 办事互动: its complaint items) holds one row per case, table10.py; 表11 (§6.8, 电子监察)
one row per reminder or escalation, table11.py. Rows are built by pure functions from what the case
tables hold, and streamed in batches for a period, a unit's subtree and a region (docs/national-tables.md).
"""
