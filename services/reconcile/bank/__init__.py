"""Bank statements: import, matching to open invoices, and the decisions as events."""
