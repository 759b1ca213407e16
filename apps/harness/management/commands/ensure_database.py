import psycopg2
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg2 import sql


class Command(BaseCommand):
    help = "Create the configured PostgreSQL database if it does not exist (run before migrate)."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        where = f"postgres://{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        try:
            conn = psycopg2.connect(dbname="postgres", user=db.get("USER") or None, password=db.get("PASSWORD") or None,
                                    host=db.get("HOST") or None, port=db.get("PORT") or None, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise CommandError(f"PostgreSQL at {where} is unreachable: {str(exc).strip().splitlines()[0]}") from None
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                self.stdout.write(f"created database {db['NAME']}")
        conn.close()
