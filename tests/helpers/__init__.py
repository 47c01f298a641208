"""Helpers shared by tests of several features."""
