"""``python -m genrekit``: the same as the ``genrekit`` command."""

import sys

from genrekit.cli import main

# The guard matters: pool workers started with "spawn" import this module again.
if __name__ == "__main__":
    sys.exit(main())
