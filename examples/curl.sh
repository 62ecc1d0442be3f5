#!/usr/bin/env bash
# The service from the shell: ./examples/curl.sh [base URL]  (else BASE_URL, else http://localhost:8000)
set -euo pipefail
BASE_URL="${1:-${BASE_URL:-http://localhost:8000}}"
post() { curl -sS --fail-with-body -H 'Content-Type: application/json' "$BASE_URL$1" -d "$2"; echo; }

echo '# the models and their state'
curl -sS --fail-with-body "$BASE_URL/v1/models"; echo
echo '# one iris flower, by feature name'
post /v1/models/iris/predict '{"features": {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}'
echo '# a batch: a feature array and named features'
post /v1/models/iris/predict/batch '{"instances": [[7.0, 3.2, 4.7, 1.4], {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}]}'
echo '# Open Inference Protocol (V2): two rows as one tensor'
post /v2/models/iris/infer '{"inputs": [{"name": "float_input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.3, 3.3, 6.0, 2.5]}]}'
echo "# iris's own OpenAPI document (its typed routes and schemas)"
doc="$(curl -sS --fail-with-body "$BASE_URL/v1/models/iris/openapi.json")"
echo "${doc:0:300}..."
