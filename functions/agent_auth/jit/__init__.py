"""Approving just-in-time requests: signed links, the approval page, and the decision."""
