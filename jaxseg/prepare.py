"""``python -m jaxseg.prepare``: kept beside the other commands; the tool is ``jaxseg.cli.prepare``."""

from jaxseg.cli.prepare import run

if __name__ == "__main__":
    run()
