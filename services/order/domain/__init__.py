"""The order service's pure domain: state, lifecycle, fulfilment, validation, catalog, approvals."""
