"""Component trees of the dashboard (no data I/O)."""
