"""Lambda entry points: thin glue from API Gateway events to the use cases."""
