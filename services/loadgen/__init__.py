"""The benchmark's thin load source: pre-encoded venue frames replayed at a fixed rate, orders answered filled.

``draizer bench`` used to drive the pipeline with the Python simulator, which spends a whole core at 20k
quotes/s on its price model, books and encoding, and so distorts the latency it is meant to measure. This
package does that work once, before the run (``prices``, ``frames``), and during the run only copies bytes
to sockets (``server``) and answers orders from their own numbers (``acceptor``). ``app`` ties them into one
asyncio process; ``python -m services.loadgen`` runs it pinned to a core of its own.
"""
