"""Memory planners (arena packing)."""
