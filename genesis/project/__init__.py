"""Stage 1, the project: find genesis.yaml, load every YAML file safely (with line:column for
each value), check its shape against the JSON Schemas and build the frozen model
(`load.load_project` -> `model.Project`). Also the project's settings (`config`: targets,
destinations' access, `business_time`: time zone and week start) and the sandboxed Jinja
(`templating`) the loader and the destinations share."""
