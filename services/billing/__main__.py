"""Run the billing service: ``python -m services.billing``."""

from shared.service import serve

serve("services.billing.app:make_app", "billing")
