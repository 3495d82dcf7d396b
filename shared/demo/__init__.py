"""Realistic storefront traffic for ``oms demo``, benchmarks and tests."""
