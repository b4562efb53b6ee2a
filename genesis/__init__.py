"""Genesis: a semantic data layer for operational trackers."""

__version__ = "0.1.0"

import logging as _logging

# sqlglot warns through `logging` ("... Falling back to parsing as a 'Command'"), which
# would reach stderr. Genesis reports such input as a located error itself.
_logging.getLogger("sqlglot").setLevel(_logging.ERROR)
