FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY migrations ./migrations
COPY alembic.ini ./
COPY policies ./policies
# Editable: the Alembic migrations/ folder stays beside the package, where `gateway db upgrade` finds it.
RUN pip install --no-cache-dir -e . \
 && pip install --no-cache-dir --no-deps --ignore-requires-python opa-golib-python-bindings==0.4.4
# OPA's Go runtime reads these from the environment the process starts with (gateway/policy/goruntime.py).
ENV GOGC=400 GOMAXPROCS=1
EXPOSE 8080
CMD ["gateway", "serve", "--config", "/etc/gateway/gateway.yaml", "--host", "0.0.0.0"]
