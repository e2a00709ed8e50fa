"""``python -m playlog``: the same command as the ``playlog`` console script."""

from playlog.cli import main

if __name__ == "__main__":
    main()
