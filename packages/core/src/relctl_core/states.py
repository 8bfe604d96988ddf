"""Stage, run and experiment states, in a module of their own: commands that only read the run
database use them without importing the schema (and SQLAlchemy with it)."""

# A stage goes pending -> queued -> running -> done | failed | cancelled.
PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED = "pending", "queued", "running", "done", "failed", "cancelled"
ACTIVE = (PENDING, QUEUED, RUNNING)
