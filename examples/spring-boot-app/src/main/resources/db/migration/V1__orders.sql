-- The shop's own first migration: Spring Boot's Flyway runs it from classpath:db/migration and records it
-- in flyway_schema_history; pgdispatch's migrations live at pgdispatch/db/migration with their own history.
CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item         text        NOT NULL,
    receipt_sent timestamptz
);
