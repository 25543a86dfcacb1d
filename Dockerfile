# syntax=docker/dockerfile:1
# pgdispatch container image: build the shaded jar with Maven, run it on a JRE as a non-root user.
#   docker build -t pgdispatch .
#   docker run --rm -e DATABASE_URL=postgres://user:pass@host:5432/pgdispatch pgdispatch migrate
#   docker run --rm -e DATABASE_URL=... -e PGDISPATCH_HTTP_HOST=0.0.0.0 -p 9464:9464 pgdispatch run
#   docker run --rm -e DATABASE_URL=... -e PGDISPATCH_BUILTIN_HANDLERS=false -v $PWD/handlers:/handlers:ro pgdispatch run
#     runs your handler jars (docs/HANDLERS.md): PGDISPATCH_HANDLERS is /handlers in this image
# The arguments are pgdispatch's own (scripts/pgdispatch --help lists them); configuration comes
# from the environment as described in README.md.

FROM maven:3.9-eclipse-temurin-21 AS build
WORKDIR /src
COPY pom.xml ./
COPY pgdispatch-core ./pgdispatch-core
COPY pgdispatch-cli ./pgdispatch-cli
COPY pgdispatch-chaos ./pgdispatch-chaos
# the migrations are packaged into the jar (pgdispatch-core copies db/migrations to pgdispatch/db/migration)
COPY db ./db
# The cache mount keeps ~/.m2 between builds, so a rebuild does not download every dependency
# again; it is not part of any image layer.
RUN --mount=type=cache,target=/root/.m2 mvn -B -DskipTests -DskipITs -pl pgdispatch-cli -am package \
 && cp pgdispatch-cli/target/pgdispatch.jar /pgdispatch.jar

FROM eclipse-temurin:21-jre
# The Ubuntu-based temurin image already has wget and curl: the compose healthcheck uses wget.
RUN groupadd --system --gid 10001 pgdispatch \
 && useradd --system --uid 10001 --gid pgdispatch --home-dir /app --shell /usr/sbin/nologin pgdispatch
WORKDIR /app
COPY --from=build --chown=root:root /pgdispatch.jar /app/pgdispatch.jar
# your handler jars: mount a directory of them here (read-only is enough); empty, the node serves
# only the built-in demo kinds
RUN mkdir /handlers
ENV PGDISPATCH_HANDLERS=/handlers
USER pgdispatch:pgdispatch
# /metrics, /health/live, /health/ready. The server listens on PGDISPATCH_HTTP_HOST, 127.0.0.1 by
# default: set PGDISPATCH_HTTP_HOST=0.0.0.0 to reach it from outside the container.
EXPOSE 9464
ENTRYPOINT ["java","-jar","/app/pgdispatch.jar"]
CMD ["--help"]
