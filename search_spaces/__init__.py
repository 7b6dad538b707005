"""Built-in search spaces (YAML), resolvable by name after a plain pip install."""
