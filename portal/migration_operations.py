"""Migration operations the apps share."""

from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyOnPostgres(AddIndex):
    """AddIndex that builds the index CONCURRENTLY on PostgreSQL, so a big table (the runs
    with their heartbeats and claims) keeps taking writes while a deploy migrates; the
    embedded SQLite has no such build and gets a plain one. The migration must say
    `atomic = False` (PostgreSQL builds it concurrently only outside a transaction)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self._left_invalid_by_a_failed_build(schema_editor, model):
            # A CONCURRENTLY build that failed (a killed deploy, a lock timeout, a unique
            # violation) leaves its index behind, INVALID: never used, and building again
            # fails with "already exists". Drop it (concurrently too) and build afresh.
            self._apply(schema_editor, model, "remove_index")
        self._apply(schema_editor, model, "add_index")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._apply(schema_editor, from_state.apps.get_model(app_label, self.model_name), "remove_index")

    def _apply(self, schema_editor, model, method):
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
        getattr(schema_editor, method)(model, self.index, **concurrently)

    def _left_invalid_by_a_failed_build(self, schema_editor, model):
        connection = schema_editor.connection
        if connection.vendor != "postgresql" or not self.allow_migrate_model(connection.alias, model):
            return False
        # Read even by sqlmigrate (which only collects SQL): its output then has the drop
        # exactly when the database it looked at needs it.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(%s) AND indrelid = to_regclass(%s)"
                " AND NOT indisvalid",
                [schema_editor.quote_name(self.index.name), schema_editor.quote_name(model._meta.db_table)],
            )
            return cursor.fetchone() is not None
