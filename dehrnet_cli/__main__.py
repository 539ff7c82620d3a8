"""`python -m dehrnet_cli` and `torchrun -m dehrnet_cli`: the CLI. Guarded, because training's data workers start
from a fresh interpreter that imports this module again (as __mp_main__) and must not run the CLI."""

from dehrnet_cli.cli import main

if __name__ == "__main__":
    main()
