"""Record each project database's own login role and its secret."""

from django.db import migrations, models

_REVOKE_CONNECT = """
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not the owner of the registry database: CONNECT stays public';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_project_server"),
    ]

    operations = [
        # Project roles must not open the registry (it holds their secrets).
        # An external server's role may not own the registry's database:
        # then this is skipped with a notice, and the tables stay closed to
        # them anyway (no privileges were ever granted on them).
        migrations.RunSQL(
            sql=_REVOKE_CONNECT,
            reverse_sql=migrations.RunSQL.noop,
        ),
        # Existing projects get no role here: `manage.py migrate_projects`
        # creates one per project; until then they use the admin connection.
        migrations.AddField(
            model_name="project",
            name="database_role",
            field=models.CharField(
                blank=True, default="", editable=False, max_length=63
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="database_secret",
            field=models.CharField(
                blank=True, default="", editable=False, max_length=128
            ),
        ),
    ]
