"""The Lambda functions' bodies, one module a trigger family: ingest (the ingest queue), bus consumers (forward
payload, tasks, websocket notify behind their queues), the handler function, schedules and the scheduler's target,
the system jobs, API Gateway's websocket events. ``entries.LambdaEntries`` is each function's entry over a
container; ``app.py`` names them for Chalice. The local stack runs the very same bodies.
"""
