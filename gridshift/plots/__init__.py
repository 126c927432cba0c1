"""Figures written to files (matplotlib, the `plot` extra); the pure models they draw live elsewhere."""
