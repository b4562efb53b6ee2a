"""The validation rules, one module a topic; each module lists its rules in `RULES`."""
