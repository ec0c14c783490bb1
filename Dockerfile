# Nimbus in a container: `docker build -t nimbus . && docker run -p 8080:8080 -v nimbus-data:/data nimbus`.
# The sandbox's namespaces and uid switching need privileges a default container lacks (e.g. --privileged
# or a suitable seccomp/AppArmor profile); without them Nimbus runs and reports a degraded isolation level.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/nimbus

# Dependencies first, from the lock alone, so code changes do not invalidate this layer.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# The packages only (no .venv, var/ or tests from the build context).
COPY pyproject.toml README.md ./
COPY app ./app
COPY components ./components
COPY engine ./engine
COPY data ./data
COPY bench ./bench
# The lock pins setuptools, so the editable install needs no network for build isolation.
RUN pip install --no-deps --no-build-isolation -e .

ENV NIMBUS_HOST=0.0.0.0 \
    NIMBUS_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
CMD ["nimbus", "serve"]
