"""``python -m jaxseg.report``: kept for the documented command; the tool is ``jaxseg.cli.report``."""

from jaxseg.cli.report import run

if __name__ == "__main__":
    run()
