"""Benchmarks of Promo Balance (run them as scripts; see bench/README.md)."""
