"""Genesis: a semantic data layer for operational trackers."""

__version__ = "0.1.0"

import logging as _logging

# sqlglot warns through `logging` ("... Falling back to parsing as a 'Command'"); with no
# handler configured Python would print that to stderr. Genesis reports such input as a
# located error itself, so the warning only reaches handlers a caller configured.
_logging.getLogger("sqlglot").addHandler(_logging.NullHandler())
