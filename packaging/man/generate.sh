#!/bin/sh
# Writes the man pages of kes and its commands, gzipped, into OUT_DIR. The
# text is the commands' own --help output (help2man), so the pages can never
# disagree with the binary.
#
#   generate.sh KES_BINARY OUT_DIR VERSION
set -eu
kes=$1 out=$2 version=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# name, command words, one-line description
pages='kes||key management server and client (kes-cpp, a drop-in replacement for MinIO KES)
kes-server|server|start a KES server
kes-ls|ls|list keys, policies and identities
kes-key|key|manage cryptographic keys on a KES server
kes-policy|policy|show the policies of a KES server
kes-identity|identity|create and inspect KES identities
kes-log|log|print error and audit log events of a KES server
kes-status|status|print the status of a KES server
kes-metric|metric|print the metrics of a KES server
kes-migrate|migrate|copy keys from one keystore to another
kes-update|update|explain how to update kes'

echo "$pages" | while IFS='|' read -r name words desc; do
  # help2man runs "<program> --help"; a wrapper named like the page runs the
  # command. Usage goes to stderr (exit 2), and `kes ls -h` adds upstream's
  # "Error: pflag: help requested" line, which is no help text.
  wrapper="$work/$name"
  printf '#!/bin/sh\n"%s" %s "$@" 2>&1 | sed "/^Error: pflag: help requested$/d"\n' \
    "$kes" "$words" >"$wrapper"
  chmod +x "$wrapper"
  include="$work/$name.h2m"
  if [ "$name" = kes ]; then
    cp "$here/kes.h2m" "$include"
  else
    cp "$here/command.h2m" "$include"
  fi
  help2man --no-info --no-discard-stderr --section=1 --source=kes-cpp \
    --version-string="$version" --name="$desc" --include="$include" \
    --output="$work/$name.1" "$wrapper"
  gzip -9n <"$work/$name.1" >"$out/$name.1.gz"
done
