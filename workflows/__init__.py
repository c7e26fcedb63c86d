"""Temporal workflow definitions: deterministic code only (no DB, no I/O, no SQLModel imports)."""
