# The relay's image: daphne (service "web") and relay_worker (service "worker").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=relay_project.settings

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --system --uid 10001 --home-dir /app relay \
    && mkdir -p /app/var \
    && chown relay /app/var
USER relay

EXPOSE 8000
CMD ["python", "-m", "relay_project.serve", "-b", "0.0.0.0", "-p", "8000"]
