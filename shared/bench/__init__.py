"""``oms bench``: side-by-side throughput and latency measurements of the OMS (issue 6)."""
