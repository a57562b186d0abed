"""The load generator: one scenario against one system, in its own process.

Run by the orchestrator as ``python -m bench.loadgen``: the first line of stdin is the
job (JSON: system, scenario, sizes, client config, output path). Before and after its
measured phase it prints ``PHASE <name>`` on stdout and waits for an ``OK`` line on
stdin (``phase``), so the orchestrator can take CPU and memory snapshots of the servers
at exactly those moments. The result (JSON) goes to the job's ``out`` path.

Every system is driven through the same adapter interface (``ADAPTERS`` in
``__main__``, one client module per system: ``relay``, ``channels_tutorial``,
``pocketbase_realtime``, ``nats_raw``): open a connection for a user (subscribed to a
channel or not), publish M messages on a connection (pipelined, a window of
outstanding publishes, or paced at a rate), and record each delivery with its receive
time (``time.time_ns()``, taken before any parsing). Message texts carry
``<publisher>:<seq>:<send time ns>:`` (``messages``) so deliveries are matched after
the run (``analysis``).

The adapter interface is ``adapter.Adapter``: ``open_subscriber``, ``open_publisher``,
``publish`` (recording sends and acceptances on a ``publisher.Publisher``), ``extract``
(a delivery's text and ts) and ``close``. A connection (``conn.Conn``) records
``deliveries`` ([(receive ns, raw)]) until it is closed.
"""
