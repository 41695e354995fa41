"""API tokens with a permission and a set of projects, stored hashed."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0003_project_database_role"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "prefix",
                    models.CharField(editable=False, max_length=32, unique=True),
                ),
                ("digest", models.CharField(editable=False, max_length=64)),
                (
                    "permission",
                    models.CharField(
                        choices=[
                            ("read", "read"),
                            ("write", "write"),
                            ("admin", "admin"),
                        ],
                        default="read",
                        max_length=8,
                    ),
                ),
                ("all_projects", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "last_used_at",
                    models.DateTimeField(blank=True, editable=False, null=True),
                ),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "projects",
                    models.ManyToManyField(
                        blank=True, related_name="api_tokens", to="registry.project"
                    ),
                ),
            ],
            options={
                "db_table": "api_tokens",
                "ordering": ["created_at", "id"],
            },
        ),
    ]
