"""What the CLI prints and completes: `genesis ls` (`listing`), `genesis run` tables
(`preview`), the refresh summary, the monitoring commands and shell completion. cli.py keeps
the argument parsing; these modules turn library results into text or JSON."""
