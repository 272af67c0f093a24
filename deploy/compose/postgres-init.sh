#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d): one role and
# one database per service, each owning only its own (the services never share a database).
# Passwords come from the container's environment (docker-compose.yml passes them through).
set -euo pipefail
for service in partners events talent reporting; do
  variable="$(tr '[:lower:]' '[:upper:]' <<<"$service")_DB_PASSWORD"
  password="${!variable:?$variable is required}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
