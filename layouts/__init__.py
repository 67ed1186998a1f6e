"""CTIP Atlas: layouts package."""
