"""The rater's pages, mounted with the API: they live in pages/citizen/ (rate, window code, case progress)."""

from __future__ import annotations

from pages.citizen import router

__all__ = ["router"]
