-- Compose: PostgreSQL's first start creates the services' databases (docker-entrypoint-initdb.d).
-- `orderflow migrate` (the migrate service) would create a missing one too; creating them here
-- lets a database user without CREATEDB run the migrations.
CREATE DATABASE orders_db;
CREATE DATABASE auth_db;
CREATE DATABASE notifications_db;
