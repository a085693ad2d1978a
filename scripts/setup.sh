#!/usr/bin/env bash
# Installs everything s3regfs needs on a fresh Debian/Ubuntu machine (as root):
# the apt packages (FUSE 3, attr, the registry and skopeo for the end-to-end
# tests, systemd for unit verification) and the Python package with its extras.
#   scripts/setup.sh            runtime + demo
#   scripts/setup.sh --test     runtime + demo + test tools
#   scripts/setup.sh --bench    runtime + demo + benchmark tools (s3fs, rclone, fio, matplotlib)
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
apt_pkgs=(fuse3 attr curl ca-certificates)
extras="demo"
case "$mode" in
  --test) apt_pkgs+=(docker-registry skopeo umoci oci-image-tool systemd util-linux rsync strace); extras="demo,test" ;;
  --bench) apt_pkgs+=(docker-registry skopeo umoci oci-image-tool systemd util-linux rsync strace s3fs rclone fio); extras="demo,test,bench" ;;
  "") ;;
  *) echo "usage: $0 [--test|--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[${extras}]"
