"""``python -m colourmodels train|colourise|evaluate|describe``; see :mod:`colourmodels.cli`."""

import os
import sys

from colourmodels.cli import main


def _under_torchrun() -> bool:
    if "WORLD_SIZE" not in os.environ:  # no torch import for --help and plain commands
        return False
    from colourmodels.training.distributed import env_world_size

    return env_world_size() > 1


if __name__ == "__main__":
    code = main() or 0
    if _under_torchrun():
        # Under torchrun, leave without the interpreter's finalisation: Gloo's worker threads
        # can abort a process that has finished its work and closed its process group
        # (SIGABRT, "terminate called without an active exception"; seen twice in CI under
        # load; pytorch/pytorch#179291 describes the race). Every file is written and closed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
