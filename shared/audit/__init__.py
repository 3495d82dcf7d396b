"""Audit tools over the event stores: tamper check, time travel, export, republish and replay."""
