"""One module per command-line verb; cli.py imports them only when used."""
