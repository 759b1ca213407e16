FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 STATIC_ROOT=/app/var/static
WORKDIR /app
# Production requirements only: the embedded Tansu broker (requirements-local.txt) stays out of the image.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected at build time (whitenoise serves them); settings need no services for this.
RUN NOTIFY_DEVELOPMENT=1 python manage.py collectstatic --no-input -v0 \
    && NOTIFY_DEVELOPMENT=1 python manage.py compile_translations -v0
RUN useradd --create-home app && chown -R app /app
USER app
