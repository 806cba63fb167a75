"""``python -m genrekit.training.cnn``: CNN training alone, with ``genrekit train --model cnn``'s options.

The entry point only: the options are parsed in :mod:`genrekit.commands.train_cnn`, the one
home of the command line.
"""

import sys

from genrekit.commands.train_cnn import main

if __name__ == "__main__":
    sys.exit(main())
