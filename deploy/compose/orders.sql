-- The example job's target table (docker-compose.yml runs it once, when
-- PostgreSQL initialises its volume).
CREATE TABLE IF NOT EXISTS public.orders (
    order_id   bigint,
    customer   varchar(64),
    amount     numeric(12, 2),
    status     varchar(16),
    ordered_at timestamptz
);
