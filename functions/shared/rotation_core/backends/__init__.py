"""Credential backends for multi-credential rotation (one identity, two live credentials)."""
