"""Alembic environment for the run database; the URL comes from relctl's settings."""

from alembic import context

from relctl_core.db import Base, get_engine

config = context.config
connectable = config.attributes.get("connection")
if connectable is None:
    with get_engine(config.get_main_option("sqlalchemy.url")).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
else:
    context.configure(connection=connectable, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
