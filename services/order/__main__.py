"""Run the order service: ``python -m services.order``."""

from shared.service import serve

serve("services.order.app:make_app", "order")
