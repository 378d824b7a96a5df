#!/bin/sh
# Downloads the S3A connector for a Hadoop version from a Maven repository into DIR, each jar
# checked against the repository's .sha1 file: hadoop-aws, the AWS SDK v2 bundle and (Hadoop
# 3.4.2 and later) the analytics accelerator, in the versions that Hadoop release was built
# with (read from its hadoop-project pom), as Hadoop's own binary distribution ships them in
# share/hadoop/tools/lib. Prints `unchanged` when DIR is already complete, else `changed`.
#
# usage: s3a-jars.sh HADOOP_VERSION MAVEN_URL DIR
set -eu
v=$1 repo=${2%/} dir=$3
if [ -f "$dir/.complete" ]; then
  echo unchanged
  exit 0
fi
get() { curl -fsSL --retry 3 "$1" 2>/dev/null || wget -qO- "$1"; }
pom=$(get "$repo/org/apache/hadoop/hadoop-project/$v/hadoop-project-$v.pom") || {
  echo "no Hadoop $v in $repo (hadoop-project-$v.pom): is s3a_maven_url right?" >&2
  exit 1
}
prop() { printf '%s\n' "$pom" | sed -n "s|.*<$1>\([^<]*\)</$1>.*|\1|p" | head -1; }
sdk=$(prop aws-java-sdk-v2.version)
[ -n "$sdk" ] || { echo "Hadoop $v's pom names no AWS SDK v2 version: S3A needs Hadoop 3.4 or later" >&2; exit 1; }
accel=$(prop amazon-s3-analyticsaccelerator-s3.version)
set -- "org/apache/hadoop/hadoop-aws/$v/hadoop-aws-$v.jar" \
  "software/amazon/awssdk/bundle/$sdk/bundle-$sdk.jar"
[ -z "$accel" ] || set -- "$@" \
  "software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/$accel/analyticsaccelerator-s3-$accel.jar"
mkdir -p "$dir"
for path in "$@"; do
  jar=$dir/$(basename "$path")
  want=$(get "$repo/$path.sha1" | tr -d ' \r\n' | cut -c1-40)
  [ -f "$jar" ] && [ "$(sha1sum < "$jar" | cut -d' ' -f1)" = "$want" ] && continue
  get "$repo/$path" > "$jar.part" || { echo "cannot download $repo/$path" >&2; exit 1; }
  got=$(sha1sum < "$jar.part" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "checksum of $repo/$path is sha1:$got, not sha1:$want" >&2; exit 1; }
  mv "$jar.part" "$jar"
done
touch "$dir/.complete"
echo changed
