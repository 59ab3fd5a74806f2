"""`agent-auth dev`: the Lambda handlers behind a local HTTP server, with moto standing in for AWS."""
