"""CTIP Atlas: data package."""
