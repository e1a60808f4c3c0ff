"""Development machinery, outside the product: what `make run`, the tests and the
benchmark scripts need to run the product on one machine.

- embedded: the embedded Postgres and Redis that fill unset DATABASE_URL / REDIS_URL
  (postgres_server, redis_server: each server; servers: what they share)
- supervisor: `doodle run`'s processes, started again when they stop
- processes: named subprocesses in process groups of their own (benchmarks, e2e tests)
- net: free ports, whether a port answers, waiting for an HTTP endpoint to be ready
- databases: a database of one's own on a server, empty or migrated, dropped afterwards

The product's packages (core, db, ml, api, workers, flows, services) never import it
(an import-linter contract); the CLI does, for `doodle run` and the embedded defaults.
"""
