# The operator image: slim Python, gridshift without the train extra (no torch), the bundled
# forecaster model inside the package, a non-root user and a read-only-friendly layout.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gridshift ./gridshift
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN groupadd --gid 10001 gridshift && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin gridshift
COPY --from=build /install /usr/local
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["gridshift"]
CMD ["operator", "run"]
