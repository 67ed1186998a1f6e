"""CTIP Atlas: callbacks package."""
