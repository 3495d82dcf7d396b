"""A counter read back from a /metrics page, whatever its labels (shared.metrics.scraped_total)."""

from __future__ import annotations

from shared.metrics import Metrics, scraped_total


def test_a_counter_is_read_back_from_its_page_with_all_labels_added_up() -> None:
    metrics = Metrics()
    metrics.inc("oms_consumer_messages_total", 3, consumer="order")
    metrics.inc("oms_consumer_messages_total", 4, consumer="order", topic="x")
    metrics.inc("oms_consumer_messages_total_other", 100)  # another counter, same prefix
    metrics.inc("oms_db_statements_total", 7)
    page = metrics.render()
    assert scraped_total(page, "oms_consumer_messages_total") == 7
    assert scraped_total(page, "oms_db_statements_total") == 7
    assert scraped_total(page, "oms_not_there_total") == 0
