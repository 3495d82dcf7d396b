"""``python -m services.notify``: run the notify service."""

from shared.service import serve

serve("services.notify.app:make_app", "notify")
