"""CTIP Atlas: dashboard package."""
