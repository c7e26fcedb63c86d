"""The case (差评工单) in data: its vocabulary, the steps people take, and its tables.

Kept free of imports: the workflow sandbox imports the pure modules here (vocabulary, step_inputs,
steps, activity_io) and must not pull in SQLModel (records, requests, context).
"""
