"""The container images of the pipeline tasks (CPU, CUDA) and the MLflow server, in one place.

Pinned tags, never `latest`; override with environment variables when you push your own build."""

import os

REGISTRY = os.environ.get("MLOPS_IMAGE_REGISTRY", "ghcr.io/mlops-methods")
VERSION = os.environ.get("MLOPS_IMAGE_VERSION", "0.1.0")
CPU_IMAGE = os.environ.get("MLOPS_CPU_IMAGE", f"{REGISTRY}/mlops-methods-cpu:{VERSION}")
GPU_IMAGE = os.environ.get("MLOPS_GPU_IMAGE", f"{REGISTRY}/mlops-methods-cuda:{VERSION}")
# the MLflow tracking server of k8s/base (docker/Dockerfile.mlflow); k8s/base names the same tag
MLFLOW_IMAGE = os.environ.get("MLOPS_MLFLOW_IMAGE", f"{REGISTRY}/mlops-methods-mlflow:{VERSION}")
