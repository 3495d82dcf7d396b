"""The wire contract: topics, the event envelope and the payload models of every event type."""
