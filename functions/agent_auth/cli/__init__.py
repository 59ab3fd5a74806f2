"""The `agent-auth` command."""
