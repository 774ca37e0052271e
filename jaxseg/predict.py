"""``python -m jaxseg.predict``: kept for the documented command; the tool is ``jaxseg.cli.predict``."""

from jaxseg.cli.predict import run

if __name__ == "__main__":
    run()
