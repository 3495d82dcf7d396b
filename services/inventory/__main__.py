"""Run the inventory service: ``python -m services.inventory``."""

from shared.service import serve

serve("services.inventory.app:make_app", "inventory")
