"""Migration operations the apps share."""

from django.db.migrations.operations import AddIndex


class AddIndexConcurrentlyOnPostgres(AddIndex):
    """AddIndex that builds the index CONCURRENTLY on PostgreSQL, so a big table (the runs
    with their heartbeats and claims) keeps taking writes while a deploy migrates; the
    embedded SQLite has no such build and gets a plain one. The migration must say
    `atomic = False` (PostgreSQL builds it concurrently only outside a transaction)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._apply(schema_editor, to_state.apps.get_model(app_label, self.model_name), "add_index")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._apply(schema_editor, from_state.apps.get_model(app_label, self.model_name), "remove_index")

    def _apply(self, schema_editor, model, method):
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        concurrently = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
        getattr(schema_editor, method)(model, self.index, **concurrently)
