"""The relay's benchmark: ``python -m bench run`` (see docs/performance.md).

The orchestrator (this process) starts every system's servers as real processes on
free loopback ports in a temp dir, runs each scenario's load generator in a child
process (``python -m bench.loadgen``), measures the servers' CPU and RSS with psutil
around the measured phase, and writes a JSON report and a Markdown table with medians
over rounds and ratios to ``channels_tutorial`` from the same run.
"""
