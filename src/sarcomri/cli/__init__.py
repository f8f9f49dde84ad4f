"""Thin Typer commands: parse, call the library, print or write."""
