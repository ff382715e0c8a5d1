"""`python -m floodwitness.cli`."""

from floodwitness.cli import main

if __name__ == "__main__":
    main()
