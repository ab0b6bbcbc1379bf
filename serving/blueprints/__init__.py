"""The service's blueprints, one per area."""
