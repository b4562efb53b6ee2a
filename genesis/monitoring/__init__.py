"""After a run: the run history table (`history`), what is late or failing (`monitor`,
`status`, `freshness`), alerts through apprise (`alerts`) and the read-only comparison of a
destination with what a refresh would write (`audit`)."""
