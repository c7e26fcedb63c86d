"""Data: SQLModel tables, the pydantic types shared across layers, and data-access functions.

Kept empty on purpose: the workflow sandbox imports `models.case.vocabulary` and must not pull in SQLModel.
"""
