"""The API's contract, declared once: limits, request and response models, the checks
JSON Schema cannot say, and the OpenAPI document generated from them."""
