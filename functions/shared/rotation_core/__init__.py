"""Domain logic and adapters shared by the router and the worker Lambdas.

Nothing here imports boto3 or a database driver at module level: adapters take injected
clients, and drivers are imported where a connection is opened.
"""
