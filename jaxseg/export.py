"""``python -m jaxseg.export``: kept beside the other commands; the tool is ``jaxseg.cli.export``."""

from jaxseg.cli.export import run

if __name__ == "__main__":
    run()
