#!/usr/bin/env bash
# Installs s3regfs with its demo extra and runs the one-command demo: a local S3
# server holding a small registry, mounted with CloudFront-signed URLs as xattrs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec s3regfs demo "$@"
