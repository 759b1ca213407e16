# Shared set-up for bin/goal-alert and bin/test: virtualenv, requirements, local services, database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUIREMENTS="${1:-requirements.txt}"

# The tests' headless-browser checks use Debian's Chromium and its driver: installed meanwhile, in the background.
browser_install=""
if [ "$REQUIREMENTS" = "requirements-dev.txt" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    echo "installing chromium and chromium-driver (Debian packages) for the browser tests" >&2
    { apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null; }; } &
    browser_install=$!
fi
source bin/_install.sh "$REQUIREMENTS"
export DJANGO_SETTINGS_MODULE=notifications_project.settings
# Local runs: settings accept the development defaults (an http PUBLIC_BASE_URL, the dev secret key).
export NOTIFY_DEVELOPMENT="${NOTIFY_DEVELOPMENT:-1}"
# Static files for the web server (whitenoise serves them from STATIC_ROOT); unchanged files are skipped.
.venv/bin/python manage.py collectstatic --no-input -v0
# The end-user pages' translations: locale/*/LC_MESSAGES/django.po into .mo (Babel, no GNU gettext needed).
.venv/bin/python manage.py compile_translations -v0

# PostgreSQL and Redis run on this kind of machine before a session starts; start them if not.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
# Waits for the browser install started above.
if [ -n "${browser_install:-}" ]; then
    wait "$browser_install" || echo "could not install chromium: the browser tests will fail" >&2
fi
