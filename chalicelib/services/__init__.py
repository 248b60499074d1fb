"""Application services: the use cases the REST API, the websocket, the functions and the local gateways share.

Each service takes the ports it needs in its constructor (``bootstrap.Container`` builds them) and raises
``services.errors`` for what its caller did wrong; it knows nothing of HTTP, Chalice or Lambda events.
"""
