"""The domain operations that the API, the workers, the flows and the CLI all call.

Each operation owns its transaction (it takes a session factory, not a session) and
raises the exceptions of `services.errors`, which every channel maps to its own
answer: the API to its 4xx errors, the CLI to click's.

`services.registry` (promote, roll back, list) never imports the model code, so the API
may call it; `services.artifacts` and `services.models` load or validate weights, and
import `ml` (and torch).
"""
