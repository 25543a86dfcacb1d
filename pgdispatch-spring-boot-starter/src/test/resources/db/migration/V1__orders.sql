-- the application's own first migration, run by Spring Boot's Flyway at Flyway's defaults
-- (classpath:db/migration, flyway_schema_history): pgdispatch's migrations do not collide with it
CREATE TABLE orders (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item text NOT NULL
);
