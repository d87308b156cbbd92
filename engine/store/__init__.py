"""The SQLite event log (sqlite-utils): schema, migrations, batched writer, queries."""
