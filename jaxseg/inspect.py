"""``python -m jaxseg.inspect``: kept for the documented command; the tool is ``jaxseg.cli.inspect``."""

from jaxseg.cli.inspect import run

if __name__ == "__main__":
    run()
