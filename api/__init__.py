"""The FastAPI application: JSON API under /api/v1 and its auth dependencies."""
