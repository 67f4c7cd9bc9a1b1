"""Side-by-side comparison of run records, seed stability, and the published-results card.

Everything here reads the run record (docs/run-record.md); nothing imports the recipe.
"""
