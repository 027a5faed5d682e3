#!/usr/bin/env bash
# `make up`: the product demo from a fresh machine: toolchain, images, the kind cluster, the Helm
# chart with its bundled Postgres and Redis and the default tasks; one run of a few tasks now;
# then `kubectl get bgt` with their real results and how to go on.
source "$(dirname "$0")/lib.sh"
cd "$ROOT_DIR"
NS=bgtask-demo
RELEASE=bgtask
FULLNAME=$RELEASE-bgtask-operator

# gcc (the pause binary, a probe image), jq, curl, debootstrap: a fresh machine may lack them.
step "host packages" "$HACK_DIR/host-deps.sh" --no-services
step "Node $NODE_VERSION" "$HACK_DIR/install-node.sh"
export PATH="$ROOT_DIR/.tools/node/bin:$PATH"
[ -f node_modules/.installed ] && [ node_modules/.installed -nt package-lock.json ] ||
  step "npm dependencies" bash -c 'npm install --no-audit --no-fund --loglevel=error && touch node_modules/.installed'
step "bundle operator and task-runner" npm run --silent build
step "Kubernetes toolchain" "$HACK_DIR/build-toolchain.sh"
step "kind cluster" "$HACK_DIR/cluster-up.sh" >/dev/null
"$HACK_DIR/images.sh"

install_chart() {
  # An earlier `make up` ran Postgres and Redis from hack/manifests: the chart brings its own.
  kubectl -n "$NS" delete deployment/postgres deployment/redis service/postgres service/redis secret/bgtask-services \
    --ignore-not-found >/dev/null 2>&1 || true
  # The operator watches only the demo namespace: the test tiers run their own operators on
  # this cluster. Migrations run as a post-install hook once the bundled Postgres answers.
  helm upgrade --install "$RELEASE" charts/bgtask-operator -n "$NS" --create-namespace \
    -f charts/bgtask-operator/ci/demo-values.yaml --set operator.watchNamespace="$NS" --wait --timeout 5m >/dev/null
}
step "helm install $RELEASE (charts/bgtask-operator/ci/demo-values.yaml)" install_chart

psql_demo() {
  kubectl -n "$NS" exec -i "deploy/$FULLNAME-postgresql" -- \
    sh -c 'PGPASSWORD="$POSTGRES_PASSWORD" psql -v ON_ERROR_STOP=1 -h /tmp -U postgres -d "$POSTGRES_DB" -tAq -f -'
}
seed_sessions() { # a demo user with 5 expired sessions, for maintenance.cleanup-old-sessions to delete
  psql_demo <<'SQL'
INSERT INTO users (email, display_name) VALUES ('demo@example.com', 'Demo') ON CONFLICT (email) DO NOTHING;
INSERT INTO user_sessions (user_id, token, expires_at)
  SELECT id, 'demo-' || md5(random()::text), now() - interval '2 days' FROM users, generate_series(1, 5) WHERE email = 'demo@example.com';
SQL
}
step "demo data: 5 expired sessions" seed_sessions

counted() { # succeeded + failed of a task: grows once the operator has counted a finished run
  kubectl -n "$NS" get bgt "$1" -o jsonpath='{.status.succeeded} {.status.failed}' | awk '{print $1 + $2}'
}
run_now() {
  local token task before=()
  token="up-$(date +%s)"
  for task in "${DEMO_TASKS[@]}"; do
    before+=("$(counted "$task")")
    kubectl -n "$NS" annotate --overwrite bgt "$task" "workers.personal-assistant.io/run-now=$token" >/dev/null
  done
  local i=0
  for task in "${DEMO_TASKS[@]}"; do
    retry_until 180 "a counted run of $task" bash -c "[ \"\$(kubectl -n $NS get bgt $task -o jsonpath='{.status.succeeded} {.status.failed}' | awk '{print \$1 + \$2}')\" -gt ${before[$i]} ]"
    i=$((i + 1))
  done
}
# Every default task the demo can run (the others wait for an LLM endpoint or an SMTP server).
mapfile -t DEMO_TASKS < <(kubectl -n "$NS" get bgt -l app.kubernetes.io/component=default-task \
  -o jsonpath='{range .items[?(@.spec.suspend==false)]}{.metadata.name}{"\n"}{end}')
step "run ${#DEMO_TASKS[@]} default tasks now" run_now
step_summary

summaries() {
  local task
  for task in "${DEMO_TASKS[@]}"; do
    printf '  %-34s %s\n' "$task" "$(kubectl -n "$NS" get bgt "$task" -o jsonpath='{.status.lastRun.outcome}: {.status.lastRun.message} {.status.lastRun.summary}; next run {.status.nextScheduleTime}')"
  done
}

cat <<MSG

bgtask-operator is running in the kind cluster '$CLUSTER_NAME' (Kubernetes $KUBERNETES_VERSION), namespace $NS,
with Postgres and Redis of its own for this demo (production points the chart at managed databases).

$(kubectl -n "$NS" get bgt | sed 's/^/  /')

What the runs just did:
$(summaries)

Go on:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $NS get bgt                                   # schedules, last result, next run
  kubectl -n $NS describe bgt maintenance-cleanup-old-sessions   # status, conditions, events
  kubectl explain bgt.spec                                          # every field, documented (bgt.status too)
  kubectl -n $NS annotate --overwrite bgt ai-test-scheduler-connection workers.personal-assistant.io/run-now=\$(date +%s)
  kubectl -n $NS logs -l workers.personal-assistant.io/task-name=ai-test-scheduler-connection --tail=5   # a run's log
  kubectl -n $NS logs deploy/$FULLNAME                      # the operator (one of two replicas)
  kubectl -n $NS port-forward svc/$FULLNAME-metrics 8080 &  # then: curl -s localhost:8080/metrics | grep ^bgtask_
  helm -n $NS test $RELEASE                                  # one run of ai.test-scheduler-connection
  helm -n $NS upgrade $RELEASE charts/bgtask-operator --reuse-values --set families.ai.concurrency=2
  make down                                                        # delete the cluster
MSG
