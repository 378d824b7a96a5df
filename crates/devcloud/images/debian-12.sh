#!/bin/sh
# Builds devcloud's `debian-12` machine image: a minimal Debian 12 (bookworm) root filesystem
# made like Debian's own cloud images, minus the kernel (netns machines share the host's).
#
#   debian-12.sh OUT MIRROR SECURITY_MIRROR
#
# writes OUT/rootfs (the image) and OUT/manifest (`dpkg-query -W` of it). devcloud runs this
# with the apt proxy in `http_proxy`, builds into a temporary directory and renames it into
# place when this script succeeds, so a machine never boots from a half-built root.
#
# What is in it, and why:
# - minbase (the Priority: required packages) plus openssh-server, sudo, rsync,
#   ca-certificates, iproute2, procps, less and netbase: what a stock cloud image offers a
#   login. No Recommends, so no systemd, no Python and no Java: the roles must install what
#   they need, as they must on a user's stock image.
# - The login user `debian` (uid 1000) with passwordless sudo and no password, as
#   cloud-init makes it from Debian's cloud images (`os_admin_user=debian` in Glance).
# - No SSH host keys: every machine gets its own at boot (devcloud writes them, as
#   cloud-init generates them on first boot).
set -eu
out=$1 mirror=$2 security=$3

mmdebstrap --mode=root --variant=minbase --format=directory --quiet \
  --include=openssh-server,sudo,rsync,ca-certificates,iproute2,procps,less,netbase \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --aptopt='Acquire::Check-Date "false"' \
  --customize-hook='chroot "$1" useradd -m -u 1000 -U -G sudo -s /bin/bash -c Debian debian' \
  --customize-hook='chroot "$1" usermod -p "*" debian' \
  --customize-hook='printf "debian ALL=(ALL) NOPASSWD:ALL\n" >"$1/etc/sudoers.d/90-cloud-init-users"' \
  --customize-hook='chmod 0440 "$1/etc/sudoers.d/90-cloud-init-users"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
  --customize-hook='printf "%s\n" "PasswordAuthentication no" "KbdInteractiveAuthentication no" "PermitRootLogin no" "UseDNS no" "HostKey /etc/ssh/ssh_host_ed25519_key" "MaxSessions 100" "MaxStartups 100:30:200" >"$1/etc/ssh/sshd_config.d/50-cloud-image.conf"' \
  --customize-hook='printf "APT::Keep-Downloaded-Packages \"false\";\n" >"$1/etc/apt/apt.conf.d/50cloud-image"' \
  --customize-hook='chroot "$1" dpkg-query -W >"$1/../manifest"' \
  bookworm "$out/rootfs" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"

# A cloud image has none of these: the roles must bring them.
if grep -E '^(python3|openjdk|default-jre|systemd)[[:space:]:]' "$out/manifest"; then
  echo "debian-12.sh: the image must not contain the packages above" >&2
  exit 1
fi
