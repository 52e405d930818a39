#!/bin/sh
# The Ray head in a container (Compose): start Ray, deploy the Serve applications of
# deployments/serve_config.yaml as a cluster runs them (python -m deployments.kuberay --print),
# and stay in the foreground as long as Ray does. Extra arguments go to `ray start`.
set -eu
config=/tmp/orderflow-serve-config.yaml
ray start --head --block --port=6379 --dashboard-host=0.0.0.0 "$@" &
ray_pid=$!
trap 'ray stop; wait "$ray_pid"' TERM INT
python -m deployments.kuberay --print >"$config"
# The dashboard (Serve's REST API) answers a few seconds after Ray has started.
until serve deploy --address http://127.0.0.1:8265 "$config"; do
  kill -0 "$ray_pid" 2>/dev/null || exit 1
  sleep 2
done
wait "$ray_pid"
