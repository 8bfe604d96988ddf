"""relctl's own commands, a module per concern; main.py loads the one a command line names."""
