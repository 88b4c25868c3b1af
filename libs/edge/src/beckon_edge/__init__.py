"""Helpers for Beckon's public HTTP edges (tracker, chat): rate limiting per client."""

from beckon_edge.ratelimit import RateLimiter

__all__ = ["RateLimiter"]
