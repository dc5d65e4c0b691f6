"""The native JSON API under /v1, plus health and metrics endpoints."""
