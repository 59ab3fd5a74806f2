"""Signing users in through the upstream OpenID Connect provider: agent-auth as a relying party."""
