"""Starting and supervising the OMS: embedded PostgreSQL and broker, service processes."""
