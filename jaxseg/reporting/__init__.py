"""Reading finished runs: checkpoint inspection (``inspection``), experiment tables and figures (``report``)."""
