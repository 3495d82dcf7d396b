"""``python -m services.reconcile``: run the reconcile service."""

from shared.service import serve

serve("services.reconcile.app:make_app", "reconcile")
