"""``python -m colourmodels train|colourise|evaluate|describe``; see :mod:`colourmodels.cli`."""

import os
import sys

from colourmodels.cli import main

if __name__ == "__main__":
    code = main() or 0
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        # Under torchrun, leave without the interpreter's finalisation: Gloo's worker threads
        # can abort a process that has finished its work and closed its process group
        # (SIGABRT, "terminate called without an active exception"; seen twice in CI under
        # load; pytorch/pytorch#179291 describes the race). Every file is written and closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
