"""The ``oms`` operator command line."""
