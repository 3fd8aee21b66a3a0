"""Benchmarks and benchmark fixtures for lakehouse."""
