-- One row the readiness probe writes: the service is ready only while it can write.
CREATE TABLE service_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
INSERT INTO service_probe (id, at) VALUES (1, '1970-01-01T00:00:00+00:00');
