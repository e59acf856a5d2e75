"""Run Illustrator with `python app.py` (the same as `illustrator serve`); the UI lives in the ui/ package."""

import sys

from ui.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
