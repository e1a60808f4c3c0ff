"""The domain operations that the API, the workers, the flows and the CLI all call, and
the connections they run on (`services.connections`: the database and object storage a
process talks to).

Each operation owns its transaction (it takes a session factory, not a session) and
raises the exceptions of `services.errors`, which every channel maps to its own
answer: the API to its 4xx errors, the CLI to click's.

`services.registry` (promote, roll back, list) and `services.labels` (review decisions,
relabelling) never import the model code, so the API may call them (an import-linter
contract checks it). `services.artifacts` (store and load weights), `services.models`
(import a version) import `ml` and torch;
`services.datasets` (import Quick, Draw! drawings) imports `ml`'s readers and rasteriser,
which need numpy and Pillow but not torch.
"""
