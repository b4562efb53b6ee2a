"""Helping people write projects: `genesis init` (`scaffold`), `genesis demo` (the sample
studio warehouse) and the generated reference tables in docs/ (`docgen`)."""
