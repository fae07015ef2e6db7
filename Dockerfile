# The homeserver image used by docker-compose.yml (server, Celery worker and beat).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /data matrixhs && mkdir -p /data && chown matrixhs /data
USER matrixhs
ENV MATRIXHS_DATA_DIR=/data MATRIXHS_BIND=0.0.0.0:8008
EXPOSE 8008
CMD ["python", "manage.py", "serve"]
