# Sourced by tests/make/real.sh (uses its check/ok/bad, refused, import_create, $LXDIMG, $W, $P).
# Each repairable class: a broken split image (metadata tarball + a small real rootfs), what the
# daemons make of it, `lxdimg repair --yes`, then the repaired pair imported and created by both
# daemons and `lxdimg inspect --strict` of it clean. A unified image of some classes is repaired
# by the streaming rewrite and checked the same way.
source "$ROOT/scripts/test-image-lib.sh"
quiet() { "$@" >/dev/null 2>&1; }
R=$W/repair
rm -rf "$R" && mkdir -p "$R"
make_rootfs "$R/rootfs"
"${TAR[@]}" -cJf "$R/rootfs.tar.xz" -C "$R/rootfs" .

good_yaml() {
  cat <<YAML
architecture: x86_64
creation_date: 1704067200
properties:
  description: lxdimg repair test
  os: lxdimgtest
  release: one
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
YAML
}
# class NAME EXPECT: builds $R/NAME/ (metadata.yaml + templates/) from stdin's YAML, then the
# class's own change (a function class_NAME run in that directory, if defined).
mkclass() {
  local name=$1 d=$R/$1
  mkdir -p "$d/templates"
  cat > "$d/metadata.yaml"
  echo '{{ instance.name }}' > "$d/templates/hostname.tpl"
}
pack() { # NAME [MEMBERS...]: $R/NAME.tar.xz of the class directory
  local name=$1; shift
  (cd "$R/$name" && "${TAR[@]}" -cJf "$R/$name.tar.xz" "${@:-.}")
}

# 1. creation_date missing: both daemons refuse ("Missing creation date").
good_yaml | grep -v creation_date | mkclass no-date; pack no-date
# 1b. creation_date after 9999-12-31: LXD 5.0.2 imports it and then cannot read its own database
#     row back (facts §2.5), so the broken image is judged by lxdimg only (NO_DAEMON), never sent.
good_yaml | sed 's/^creation_date: .*/creation_date: 253402300800/' | mkclass date-range; pack date-range
NO_DAEMON=" date-range "
# 2. architecture under a name the daemons do not know (LXD 5.0.2 and Incus 6.0.4 lack amd64v3).
good_yaml | sed 's/^architecture: .*/architecture: amd64v3/' | mkclass arch-alias; pack arch-alias
# 3. architecture in capitals: every version refuses it.
good_yaml | sed 's/^architecture: .*/architecture: AMD64/' | mkclass arch-case; pack arch-case
# 4. no properties at all.
good_yaml | sed '/^properties:/,/^  release:/d' | mkclass no-properties; pack no-properties
# 5. a template rule pointing at a missing file (first start fails).
good_yaml | sed 's/template: hostname.tpl/template: missing.tpl/' | mkclass template-missing; pack template-missing
# 6. a relative template path, 7. an unknown trigger.
good_yaml | sed 's#  /etc/hostname:#  etc/hostname:#' | mkclass template-relative; pack template-relative
good_yaml | sed 's/when: \[create, copy\]/when: [Create, boot]/' | mkclass template-trigger; pack template-trigger
# 8. metadata.yaml a symlink to the real file: yaml.v2 reads nothing ("EOF").
good_yaml | mkclass not-regular; mv "$R/not-regular/metadata.yaml" "$R/not-regular/image.yaml"
ln -s image.yaml "$R/not-regular/metadata.yaml"; pack not-regular
# 9. metadata.yaml under a directory: "Metadata tarball is missing metadata.yaml".
good_yaml | mkclass not-at-root; mkdir -p "$R/not-at-root/img"; mv "$R/not-at-root/metadata.yaml" "$R/not-at-root/img/"
pack not-at-root
# 10. UTF-16 metadata.yaml.
good_yaml | mkclass utf16; iconv -f UTF-8 -t UTF-16 "$R/utf16/metadata.yaml" > "$R/utf16/m16" && mv "$R/utf16/m16" "$R/utf16/metadata.yaml"
pack utf16
# 11. two metadata.yaml members (the second without creation_date on top of the first's).
good_yaml | mkclass duplicate
(cd "$R/duplicate" && "${TAR[@]}" -cf "$R/duplicate.tar" metadata.yaml templates \
  && printf 'architecture: AMD64\n' > metadata.yaml && tar --owner=0 --group=0 -rf "$R/duplicate.tar" metadata.yaml \
  && xz -f "$R/duplicate.tar")
# 12. a plain tar LXD misdetects: its first member is named BZh… (LXD reads it as bzip2).
good_yaml | mkclass misdetected; echo x > "$R/misdetected/BZh91AY&SY"
(cd "$R/misdetected" && tar --owner=0 --group=0 --format=ustar -cf "$R/misdetected.tar" 'BZh91AY&SY' metadata.yaml templates)

for meta in no-date.tar.xz date-range.tar.xz arch-alias.tar.xz arch-case.tar.xz no-properties.tar.xz template-missing.tar.xz \
            template-relative.tar.xz template-trigger.tar.xz not-regular.tar.xz not-at-root.tar.xz \
            utf16.tar.xz duplicate.tar.xz misdetected.tar; do
  name=${meta%%.*}
  echo "# repair class $name"
  "$LXDIMG" inspect "$R/$meta" "$R/rootfs.tar.xz" > "$R/$name.inspect" 2>&1
  grep -E '^    (lxd-5.0|incus-6.0) |^Summary|error' "$R/$name.inspect" | head -6 | sed 's/^/  lxdimg: /'
  if [[ "$NO_DAEMON" != *" $name "* ]]; then
    for c in lxc incus; do
      if refused $c "$R/$meta" "$R/rootfs.tar.xz" "broken-$name"; then :; fi
    done
  fi
  check "repair $name: lxdimg finds an error or a refusal in the broken image" \
    bash -c "! '$LXDIMG' inspect --strict '$R/$meta' '$R/rootfs.tar.xz' >/dev/null 2>&1 || grep -q 'warning' '$R/$name.inspect'"
  out=$("$LXDIMG" repair --yes --out "$R" "$R/$meta" "$R/rootfs.tar.xz" 2>&1)
  rc=$?
  echo "$out" | sed -n '/^Fixes:/,/^---/p' | grep '^    \[' | sed 's/^/ /'
  fixed=$(sed -n 's/^Repaired: //p' <<<"$out")
  fp=$(sed -n 's/^Fingerprint: //p' <<<"$out")
  check "repair $name: repaired (exit $rc)" test "$rc" = 0 -a -s "$fixed"
  [ "$rc" = 0 ] || { echo "$out" | tail -15; continue; }
  check "repair $name: inspect --strict of the result is clean" quiet "$LXDIMG" inspect --strict "$fixed" "$R/rootfs.tar.xz"
  check "repair $name: LXD 5.0.2 imports the repaired image (fingerprint ${fp:0:12}) and inits" import_create lxc "$fixed" "$R/rootfs.tar.xz" "fixed-$name" "$fp"
  check "repair $name: Incus 6.0.4 imports the repaired image and inits" import_create incus "$fixed" "$R/rootfs.tar.xz" "fixed-$name" "$fp"
done

# Unified images: the streaming rewrite, in the image's own codec (xz and gz here).
for name in no-date arch-case not-regular duplicate misdetected; do
  u=$R/unified-$name
  rm -rf "$u" && mkdir -p "$u" && cp -a "$R/rootfs" "$u/rootfs"
  want_ext=xz
  if [ "$name" = misdetected ]; then
    # A plain tar LXD reads as bzip2: the rewrite writes it as .tar.xz.
    (cd "$R/misdetected" && tar --owner=0 --group=0 --format=ustar -cf "$u.tar" 'BZh91AY&SY' metadata.yaml templates) \
      && tar --owner=0 --group=0 --format=ustar -rf "$u.tar" -C "$u" rootfs
    img=$u.tar
  elif [ "$name" = duplicate ]; then
    want_ext=gz
    xz -dc "$R/duplicate.tar.xz" > "$u.tar" && tar --owner=0 --group=0 -rf "$u.tar" -C "$u" rootfs && gzip -f -n "$u.tar"
    img=$u.tar.gz
  else
    (cd "$R/$name" && "${TAR[@]}" -cf "$u.tar" .) && tar --owner=0 --group=0 -rf "$u.tar" -C "$u" rootfs && xz -f "$u.tar"
    img=$u.tar.xz
  fi
  echo "# repair class $name (unified, $(basename "$img"))"
  for c in lxc incus; do
    if refused $c "$img" "" "broken-u-$name" 2>/dev/null; then :; fi
  done
  out=$("$LXDIMG" repair --yes --out "$R" "$img" 2>&1)
  rc=$?
  fixed=$(sed -n 's/^Repaired: //p' <<<"$out")
  fp=$(sed -n 's/^Fingerprint: //p' <<<"$out")
  check "repair unified $name: repaired as a stream (exit $rc)" test "$rc" = 0 -a -s "$fixed"
  [ "$rc" = 0 ] || { echo "$out" | tail -15; continue; }
  check "repair unified $name: written as .$want_ext" test "${fixed##*.}" = "$want_ext"
  check "repair unified $name: inspect --strict of the result is clean" quiet "$LXDIMG" inspect --strict "$fixed"
  check "repair unified $name: LXD 5.0.2 imports it (fingerprint ${fp:0:12}) and inits" import_create lxc "$fixed" "" "fixed-u-$name" "$fp"
  check "repair unified $name: Incus 6.0.4 imports it and inits" import_create incus "$fixed" "" "fixed-u-$name" "$fp"
done
