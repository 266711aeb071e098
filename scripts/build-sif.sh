#!/usr/bin/env bash
# Builds a real, small Singularity SIF image from a busybox root filesystem.
#
#   scripts/build-sif.sh --name NAME --tag TAG [--data-mib N] OUT.sif
#
# The image holds: bin/busybox (static) with a symlink per applet, the Singularity layout
# (/.singularity.d/{runscript,env/,actions/,labels.json,Singularity}, /singularity,
# /environment, /.run, /.exec, ...) and, with --data-mib N, an N MiB file of deterministic
# pseudo-random bytes at /data/blob.bin (AES-128-CTR keystream keyed by NAME:TAG; for
# benchmarks: a small program beside a large data file).
#
# SIF layout (made with siftool, Debian's 2.8.3):
#   id 1  Def.FILE     the definition file (Bootstrap: scratch ...)
#   id 2  JSON.Labels  the labels as JSON
#   id 3  FS           squashfs, partition type PrimSys (primary system), arch amd64
#
# Rebuilds are byte-identical: mksquashfs gets fixed times, root ownership and no xattrs,
# and, since siftool stamps the current time and a random UUID into the SIF header and
# descriptors, the script then sets those fields to fixed values: the times to
# SOURCE_DATE_EPOCH (default 2020-01-01T00:00:00Z) and the UUID to one derived from
# NAME:TAG and N. It also writes Singularity's launch line (#!/usr/bin/env run-singularity)
# into the header, which `siftool new` leaves empty.
set -euo pipefail

usage() {
  echo "usage: $0 --name NAME --tag TAG [--data-mib N] OUT.sif" >&2
  exit 2
}
die() { echo "build-sif: $*" >&2; exit 1; }

name="" tag="" data_mib=0 out=""
while (($#)); do
  case "$1" in
    --name) [ $# -ge 2 ] || usage; name="$2"; shift 2 ;;
    --name=*) name="${1#*=}"; shift ;;
    --tag) [ $# -ge 2 ] || usage; tag="$2"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --data-mib) [ $# -ge 2 ] || usage; data_mib="$2"; shift 2 ;;
    --data-mib=*) data_mib="${1#*=}"; shift ;;
    -h|--help) usage ;;
    -*) echo "build-sif: unknown option $1" >&2; usage ;;
    *) [ -z "$out" ] || usage; out="$1"; shift ;;
  esac
done
if [ -z "$name" ] || [ -z "$tag" ] || [ -z "$out" ]; then usage; fi
[[ "$data_mib" =~ ^[0-9]+$ ]] || die "--data-mib wants a whole number of MiB, got '$data_mib'"
# NAME may be collection/name; keep it printable and free of characters the runscript's
# double-quoted string or the JSON would need escaping for.
[[ "$name" =~ ^[A-Za-z0-9._/-]+$ ]] || die "--name may hold only A-Z a-z 0-9 . _ - /"
[[ "$tag" =~ ^[A-Za-z0-9._-]+$ ]] || die "--tag may hold only A-Z a-z 0-9 . _ -"

for tool in busybox mksquashfs siftool node; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
done
busybox_bin="$(command -v busybox)"
[ -f /bin/busybox ] && busybox_bin=/bin/busybox

epoch="${SOURCE_DATE_EPOCH:-1577836800}"
[[ "$epoch" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds"
build_date="$(date -u -d "@$epoch" '+%Y-%m-%dT%H:%M:%SZ')"

work="$(mktemp -d "${TMPDIR:-/tmp}/build-sif.XXXXXX")"
tmp_sif=""
trap 'rm -rf "$work" ${tmp_sif:+"$tmp_sif"}' EXIT
umask 022
root="$work/rootfs"

# --- root filesystem -----------------------------------------------------------------------
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,home,root,mnt,opt,srv,var/tmp}
mkdir -p "$root"/.singularity.d/{actions,env,libs}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0700 "$root/root"
install -m 0755 "$busybox_bin" "$root/bin/busybox"
# One symlink per applet busybox was built with (sh, ls, cat, echo, ...), all in /bin.
while read -r applet; do
  [ -n "$applet" ] && [ "$applet" != busybox ] && ln -s busybox "$root/bin/$applet"
done < <("$busybox_bin" --list | LC_ALL=C sort)
ln -s bin "$root/sbin"
mkdir -p "$root/usr"
ln -s ../bin "$root/usr/bin"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

sd="$root/.singularity.d"
cat >"$sd/runscript" <<EOF
#!/bin/sh
echo "Hello from $name:$tag"
if [ \$# -gt 0 ]; then
  exec /bin/sh "\$@"
fi
exit 0
EOF
cat >"$sd/startscript" <<'EOF'
#!/bin/sh
EOF
cat >"$sd/test" <<'EOF'
#!/bin/sh
test -x /bin/busybox
EOF
printf '#!/bin/sh\n# Custom environment shell code should follow\n\n' >"$sd/env/90-environment.sh"
cat >"$sd/env/01-base.sh" <<'EOF'
#!/bin/sh
# Base environment of every container (sourced before the image's own environment).
PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH
EOF
cat >"$sd/env/99-base.sh" <<'EOF'
#!/bin/sh
if [ -z "$LD_LIBRARY_PATH" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi
PS1="Singularity> "
export LD_LIBRARY_PATH PS1
EOF
for action in exec run shell start test; do
  case "$action" in
    exec) body='exec "$@"' ;;
    run) body='if test -x /.singularity.d/runscript; then exec /.singularity.d/runscript "$@"; fi
echo "No runscript found in container" >&2; exit 1' ;;
    shell) body='exec /bin/sh "$@"' ;;
    start) body='if test -x /.singularity.d/startscript; then exec /.singularity.d/startscript "$@"; fi' ;;
    test) body='if test -x /.singularity.d/test; then exec /.singularity.d/test "$@"; fi
echo "No test script found in container, exiting" >&2; exit 0' ;;
  esac
  printf '#!/bin/sh\nfor script in /.singularity.d/env/*.sh; do\n    if [ -f "$script" ]; then\n        . "$script"\n    fi\ndone\n\n%s\n' "$body" >"$sd/actions/$action"
done

labels_json="$work/labels.json"
cat >"$labels_json" <<EOF
{
  "org.label-schema.build-date": "$build_date",
  "org.label-schema.schema-version": "1.0",
  "org.label-schema.usage.singularity.deffile.bootstrap": "scratch",
  "org.label-schema.usage.singularity.runscript.help": "Prints 'Hello from $name:$tag'; with arguments, runs them with /bin/sh.",
  "org.sreg.image": "$name:$tag",
  "org.sreg.data-mib": "$data_mib"
}
EOF
cp "$labels_json" "$sd/labels.json"

deffile="$work/Singularity"
{
  printf 'Bootstrap: scratch\n\n'
  printf '%%setup\n    # rootfs assembled by sreg scripts/build-sif.sh from busybox-static\n\n'
  printf '%%labels\n    org.sreg.image %s:%s\n\n' "$name" "$tag"
  printf '%%environment\n    # Custom environment shell code should follow\n\n'
  printf '%%runscript\n    echo "Hello from %s:%s"\n    if [ $# -gt 0 ]; then\n        exec /bin/sh "$@"\n    fi\n    exit 0\n' "$name" "$tag"
} >"$deffile"
cp "$deffile" "$sd/Singularity"

chmod 0755 "$sd/runscript" "$sd/startscript" "$sd/test" "$sd"/env/*.sh "$sd"/actions/*
chmod 0644 "$sd/labels.json" "$sd/Singularity" "$root"/etc/*

ln -s .singularity.d/runscript "$root/singularity"
ln -s .singularity.d/env/90-environment.sh "$root/environment"
for action in exec run shell test; do
  ln -s ".singularity.d/actions/$action" "$root/.$action"
done

if ((data_mib > 0)); then
  mkdir -p "$root/data"
  # Deterministic pseudo-random bytes: AES-128-CTR keystream with a key derived from
  # NAME:TAG, written 1 MiB at a time (fast: ~1 GB/s).
  node - "$root/data/blob.bin" "$data_mib" "$name:$tag" <<'EOF'
const { createCipheriv, createHash } = require('node:crypto');
const { openSync, writeSync, closeSync } = require('node:fs');
const [file, mibText, seed] = process.argv.slice(2);
const mib = Number(mibText);
const key = createHash('sha256').update(`sreg-data:${seed}`).digest();
const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
const zeros = Buffer.alloc(1 << 20);
const fd = openSync(file, 'w', 0o644);
for (let i = 0; i < mib; i++) writeSync(fd, cipher.update(zeros));
closeSync(fd);
EOF
fi

# --- squashfs ------------------------------------------------------------------------------
squash="$work/rootfs.squashfs"
comp_opts=()
# Random data does not compress; trying to costs seconds per GiB. Store data blocks as-is.
((data_mib > 0)) && comp_opts+=(-noD)
mksquashfs "$root" "$squash" -noappend -all-root -no-xattrs -no-progress -quiet \
  -mkfs-time "$epoch" -all-time "$epoch" "${comp_opts[@]}" >/dev/null

# --- SIF -----------------------------------------------------------------------------------
mkdir -p "$(dirname "$out")"
tmp_sif="$out.tmp.$$"
rm -f "$tmp_sif"
siftool new "$tmp_sif" >/dev/null
siftool add "$tmp_sif" "$deffile" --datatype 1 --groupid 1 --filename Singularity >/dev/null
siftool add "$tmp_sif" "$labels_json" --datatype 3 --groupid 1 --filename labels.json >/dev/null
siftool add "$tmp_sif" "$squash" --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 \
  --filename rootfs.squashfs >/dev/null

# Pin what siftool made random or time-dependent (see the header comment). Offsets are
# those of sylabs/sif v2's on-disk structs (little-endian, packed):
#   header:     0 launch[32], 32 magic[10], 42 version[3], 45 arch[3], 48 id[16],
#               64 createdAt, 72 modifiedAt, 80 dfree, 88 dtotal, 96 descroff, 104 descrlen,
#               112 dataoff, 120 datalen
#   descriptor (585 bytes): 0 datatype i32, 4 used u8, 5 id, 9 groupid, 13 link (u32),
#               17 offset, 25 size, 33 sizeWithPadding, 41 createdAt, 49 modifiedAt,
#               57 uid, 65 gid (i64), 73 name[128], 201 extra[384]
node - "$tmp_sif" "$epoch" "$name:$tag:$data_mib" <<'EOF'
const { openSync, readSync, writeSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const [file, epochText, seed] = process.argv.slice(2);
const epoch = BigInt(epochText);
const fd = openSync(file, 'r+');
const header = Buffer.alloc(128);
readSync(fd, header, 0, 128, 0);
if (header.toString('latin1', 32, 41) !== 'SIF_MAGIC') throw new Error('not a SIF file');
const launch = Buffer.alloc(32);
launch.write('#!/usr/bin/env run-singularity\n', 'latin1');
launch.copy(header, 0);
const id = createHash('sha256').update(`sreg-sif:${seed}`).digest().subarray(0, 16);
id[6] = (id[6] & 0x0f) | 0x50; // RFC 4122 layout, version 5 (name-based)
id[8] = (id[8] & 0x3f) | 0x80;
id.copy(header, 48);
header.writeBigInt64LE(epoch, 64);
header.writeBigInt64LE(epoch, 72);
writeSync(fd, header, 0, 128, 0);
const total = Number(header.readBigInt64LE(88));
const descOff = Number(header.readBigInt64LE(96));
const desc = Buffer.alloc(585);
for (let i = 0; i < total; i++) {
  const at = descOff + i * 585;
  readSync(fd, desc, 0, 585, at);
  if (desc[4] !== 1) continue;
  desc.writeBigInt64LE(epoch, 41);
  desc.writeBigInt64LE(epoch, 49);
  writeSync(fd, desc, 0, 585, at);
}
closeSync(fd);
EOF
chmod 0755 "$tmp_sif"
mv -f "$tmp_sif" "$out"
