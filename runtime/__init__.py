"""Process plumbing shared by the API, the worker and the dev stack: Temporal connection, outbox relay, dev runner."""
