#!/usr/bin/env bash
# make cluster-smoke: proof on a real Kubernetes API. A throwaway kind cluster (needs a running
# Docker daemon) gets standalone Kubeflow Pipelines, Kubeflow Trainer and our dev overlay, then
# runs the `llm` pipeline on the tiny profile on CPU and waits for it to succeed.
#   make cluster-smoke                   create, run, delete the cluster
#   KEEP_CLUSTER=1 make cluster-smoke    leave it running to look around (kind delete cluster --name mlops-smoke)
# Takes ~20-30 minutes on a laptop (image builds and KFP's start-up dominate).
set -euo pipefail

# pinned: the tools, the cluster's Kubernetes, and the manifests installed into it
readonly KIND_VERSION=v0.30.0
readonly KIND_NODE_IMAGE=kindest/node:v1.34.0
readonly KFP_VERSION=2.17.0  # the release whose pipeline-runner Role tests/k8s_reference pins
readonly TRAINER_VERSION=v2.3.0
readonly CLUSTER=mlops-smoke
readonly KFP_NAMESPACE=kubeflow
readonly SMOKE_IMAGE=mlops-methods-cpu:smoke
readonly KFP_PORT=8888
readonly TIMEOUT=1800s

cd "$(dirname "$0")/../.."
BIN=.venv/bin
PYTHON=$BIN/python
KUBECTL=$BIN/kubectl

fail() {
  echo "cluster-smoke: $*" >&2
  exit 1
}

require_docker() {
  command -v docker >/dev/null 2>&1 || fail "needs Docker (kind runs the cluster's nodes as containers); none on PATH"
  docker info >/dev/null 2>&1 || fail "needs a running Docker daemon (kind runs the cluster's nodes as containers); \`docker info\` cannot reach one"
}

require_kind() {
  command -v kind >/dev/null 2>&1 || fail "needs kind ${KIND_VERSION}: go install sigs.k8s.io/kind@${KIND_VERSION}"
  kind version | grep -q "${KIND_VERSION}" || echo "cluster-smoke: tested with kind ${KIND_VERSION}, found $(kind version)" >&2
}

create_cluster() {
  kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 120s
  if [[ -z "${KEEP_CLUSTER:-}" ]]; then
    trap 'kind delete cluster --name "$CLUSTER"' EXIT
  fi
}

install_kfp() {
  local base="github.com/kubeflow/pipelines/manifests/kustomize"
  "$KUBECTL" apply -k "${base}/cluster-scoped-resources?ref=${KFP_VERSION}"
  "$KUBECTL" wait --for condition=established --timeout=120s crd/applications.app.k8s.io
  "$KUBECTL" apply -k "${base}/env/platform-agnostic?ref=${KFP_VERSION}"
  "$KUBECTL" -n "$KFP_NAMESPACE" wait --for=condition=Available --timeout=900s deployment --all
}

install_trainer() {
  local base="https://github.com/kubeflow/trainer.git/manifests/overlays"
  "$KUBECTL" apply --server-side -k "${base}/manager?ref=${TRAINER_VERSION}"
  "$KUBECTL" -n kubeflow-system wait --for=condition=Available --timeout=600s deployment --all
  "$KUBECTL" apply --server-side -k "${base}/runtimes?ref=${TRAINER_VERSION}"
}

# every task runs in the CPU image, loaded into the node (nothing pushed to a registry)
load_image() {
  docker build -f docker/Dockerfile -t "$SMOKE_IMAGE" \
    --build-arg REVISION="$(git rev-parse HEAD)" --build-arg IMAGE="$SMOKE_IMAGE" .
  kind load docker-image "$SMOKE_IMAGE" --name "$CLUSTER"
}

install_stack() {
  make secrets
  "$KUBECTL" apply -k k8s/overlays/dev
  "$KUBECTL" -n "$KFP_NAMESPACE" rollout status --timeout=600s deployment/mlflow
}

# the tiny profile (the pipeline's default) on CPU: no accelerator, no GPU node selector or
# toleration, small requests; KFP runs it as an Argo Workflow, whose phase says how it ended
run_llm_pipeline() {
  "$KUBECTL" -n "$KFP_NAMESPACE" port-forward svc/ml-pipeline-ui "${KFP_PORT}:80" >/dev/null &
  local forward=$!
  trap 'kill "$forward" 2>/dev/null || true; [[ -n "${KEEP_CLUSTER:-}" ]] || kind delete cluster --name "$CLUSTER"' EXIT
  sleep 5
  MLOPS_CPU_IMAGE="$SMOKE_IMAGE" MLOPS_GPU_IMAGE="$SMOKE_IMAGE" "$PYTHON" -m pipelines.submit \
    --host "http://localhost:${KFP_PORT}" --pipeline llm --experiment cluster-smoke \
    --arg accelerator_count=0 --arg cpu=2 --arg memory=4Gi \
    --arg 'tolerations=[]' --arg 'node_selector={}'
  "$KUBECTL" -n "$KFP_NAMESPACE" wait workflow --all --timeout="$TIMEOUT" \
    --for=jsonpath='{.status.phase}'=Succeeded
}

main() {
  require_docker
  require_kind
  create_cluster
  install_kfp
  install_trainer
  load_image
  install_stack
  run_llm_pipeline
  echo "cluster-smoke: the llm pipeline succeeded on kind ${KIND_VERSION} (${KIND_NODE_IMAGE}), KFP ${KFP_VERSION}, Trainer ${TRAINER_VERSION}"
}

main "$@"
