-- One row the readiness probe writes: the service is ready only while it can write.
CREATE TABLE service_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TIMESTAMPTZ NOT NULL
);
INSERT INTO service_probe (id, at) VALUES (1, now());
