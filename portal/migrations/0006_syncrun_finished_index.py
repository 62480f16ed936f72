from django.db import migrations, models

from portal.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    # the index is built CONCURRENTLY on PostgreSQL: outside a transaction
    atomic = False

    dependencies = [
        ("portal", "0005_api_tokens"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="syncrun",
            index=models.Index(fields=["finished"], name="portal_syncrun_finished"),
        ),
    ]
