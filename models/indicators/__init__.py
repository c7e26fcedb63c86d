"""The statistics (统计指标) of the 好差评 regime: definitions, counting over the raw tables, derived ratios.

definitions.py names every count and indicator; counting.py holds each count's SQL condition;
compute.py runs one GROUP BY per family; derive.py turns counts into indicators (pure); report.py
names the groups and links each count to its list (members.py). docs/indicators.md defines them.
"""
