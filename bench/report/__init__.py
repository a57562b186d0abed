"""The report of a run: the figures read from each run record (``figures``), their
medians over rounds and ratios to the baseline (``summary``: the JSON report), the
machine it ran on (``machine``), the Markdown tables (``tables``), the console's
progress lines (``progress``) and the files written (``files``)."""
