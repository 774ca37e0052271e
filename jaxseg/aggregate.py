"""``python -m jaxseg.aggregate``: kept for the documented command; the tool is ``jaxseg.cli.aggregate``."""

from jaxseg.cli.aggregate import run

if __name__ == "__main__":
    run()
