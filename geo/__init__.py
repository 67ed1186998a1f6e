"""CTIP Atlas: geo package."""
