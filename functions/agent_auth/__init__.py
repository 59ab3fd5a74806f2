"""agent-auth: an authorization server for AI agents."""

__version__ = "0.1.0"
