"""Settings (the one reader of the environment) and logging context: leaves that every layer
may import and that import nothing of ours."""
