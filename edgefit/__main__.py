"""`python -m edgefit …` is the `edgefit` command."""

from edgefit.cli import main

if __name__ == "__main__":
    main()
