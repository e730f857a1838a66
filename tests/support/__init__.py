"""Test helpers shared by the tiers (impostor servers, ...)."""
