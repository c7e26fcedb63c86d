"""Suspicious ratings (可疑评价): detectors that flag patterns for a person to review, never dropping a rating.

rules.py (the profile section) is pure data and imports nothing else of this package, so the policy
profile and the workflows can use it; the tables and detectors import the database layer.
"""
