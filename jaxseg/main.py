"""``python -m jaxseg.main``: kept for the documented command; the tool is ``jaxseg.cli.train``."""

from jaxseg.cli.train import run

if __name__ == "__main__":
    run()
