"""Command-line tools: one thin module per command over the library.

  jaxseg-train     python -m jaxseg.main       jaxseg.cli.train
  jaxseg-predict   python -m jaxseg.predict    jaxseg.cli.predict
  jaxseg-inspect   python -m jaxseg.inspect    jaxseg.cli.inspect
  jaxseg-report    python -m jaxseg.report     jaxseg.cli.report
  jaxseg-aggregate python -m jaxseg.aggregate  jaxseg.cli.aggregate
  jaxseg-export    python -m jaxseg.export     jaxseg.cli.export

Each module parses arguments and calls library functions. ``jaxseg.cli.entry``
is the only place that configures the process (``jaxseg.runtime``) and turns
``jaxseg.errors.JaxsegError`` into one ``error:`` line and an exit code.
"""
