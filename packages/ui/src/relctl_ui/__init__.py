"""relctl's web app: a read-only view of the run database in a browser (`relctl ui`)."""
