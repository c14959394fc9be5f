# Apache Airflow 3.3 with airflow-provider-carto installed from this checkout.
# Used by docker-compose.yml (every Airflow service and the CARTO emulator) and by the Helm chart
# (see docs/deployment.md). Build: docker build -t airflow-provider-carto:local .
FROM apache/airflow:3.3.2

# emulator: the offline CARTO that docker-compose.yml runs; redis: the fleet-wide token cache.
# For a production image without the emulator: --build-arg CARTO_PROVIDER_EXTRAS=redis
ARG CARTO_PROVIDER_EXTRAS=emulator,redis

COPY --chown=airflow:root pyproject.toml README.md /tmp/carto-provider/
COPY --chown=airflow:root carto_provider /tmp/carto-provider/carto_provider

# Pinning apache-airflow to the image's own version (AIRFLOW_VERSION is set by the base image) stops
# pip from upgrading or downgrading Airflow while resolving the provider's dependencies.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        "/tmp/carto-provider[${CARTO_PROVIDER_EXTRAS}]" \
    && rm -rf /tmp/carto-provider
