"""``python -m colourmodels train|colourise|evaluate|describe``; see :mod:`colourmodels.cli`."""

import sys

from colourmodels.cli import main

if __name__ == "__main__":
    sys.exit(main())
