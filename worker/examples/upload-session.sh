#!/usr/bin/env bash
# Uploads an image to an lxdimg worker in parts (an upload session, worker/README.md), with curl
# and jq only. Run it again after an interruption and it resumes: the session is found again by
# the image's fingerprint and only the parts the worker does not have yet are sent.
#
#   SERVER=https://images.example.org TOKEN=... upload-session.sh IMAGE.tar.xz [ALIAS]          unified
#   SERVER=... TOKEN=... upload-session.sh META.tar.xz ROOTFS.squashfs [ALIAS]                  split container
#   VM=1 SERVER=... TOKEN=... upload-session.sh META.tar.xz DISK.qcow2 [ALIAS]                  split VM
set -euo pipefail
: "${SERVER:?set SERVER}" "${TOKEN:?set TOKEN}"
if [ $# -ge 2 ] && [ -f "$2" ]; then
  files=("$1" "$2"); roles=(metadata "$([ -n "${VM:-}" ] && echo rootfs.img || echo rootfs)"); alias=${3:-}
else
  files=("$1"); roles=(unified); alias=${2:-}
fi
api() { curl -sS --retry 5 --retry-all-errors -H "Authorization: Bearer $TOKEN" "$@"; }

# The LXD fingerprint: SHA-256 of the file (unified) or of metadata then rootfs (split).
fp=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
spec=$(for i in "${!files[@]}"; do
  jq -n --arg role "${roles[$i]}" --arg name "$(basename "${files[$i]}")" --argjson size "$(stat -c %s "${files[$i]}")" '{role: $role, name: $name, size: $size}'
done | jq -s --arg fp "$fp" --arg alias "$alias" '{files: ., fingerprint: $fp, aliases: (if $alias == "" then [] else [$alias] end)}')

s=$(api -X POST -H 'Content-Type: application/json' --data-binary "$spec" "$SERVER/api/uploads")
if [ "$(jq -r .status <<<"$s")" = exists ]; then echo "already stored: $(jq -r .image.fingerprint <<<"$s")"; exit 0; fi
id=$(jq -r '.id // empty' <<<"$s"); [ -n "$id" ] || { echo "$s" >&2; exit 1; }
part=$(jq -r .partBytes <<<"$s")
[ "$(jq -r '.resumed // false' <<<"$s")" = true ] && echo "resuming session $id"

for i in "${!files[@]}"; do
  role=${roles[$i]}
  count=$(jq -r --arg r "$role" '.files[] | select(.role == $r) | .parts' <<<"$s")
  for n in $(seq 1 "$count"); do
    if jq -e --arg r "$role" --argjson n "$n" '.files[] | select(.role == $r) | .stored | index($n)' <<<"$s" >/dev/null; then continue; fi
    # Part n is bytes (n-1)*partBytes … n*partBytes-1 of the file (the last part is shorter).
    dd if="${files[$i]}" bs="$part" skip=$((n - 1)) count=1 iflag=fullblock status=none |
      api -X PUT --data-binary @- -H 'Content-Type: application/octet-stream' "$SERVER/api/uploads/$id/$role/$n" >/dev/null
    echo "$role part $n/$count"
  done
done

answer=$(api -X POST -w '\n%{http_code}' "$SERVER/api/uploads/$id/complete")
code=$(tail -n1 <<<"$answer"); body=$(sed '$d' <<<"$answer")
case $code in
  200|201) echo "stored: $(jq -r .fingerprint <<<"$body")"; jq -r .import <<<"$body" ;;
  *) echo "HTTP $code: $(jq -r '.error // .' <<<"$body")" >&2; exit 1 ;;
esac
