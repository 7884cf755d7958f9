#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) from the
# crypto/identity sources, outside the CMake build:
#   tests/fuzz/build.sh <cmake-build-dir> <out-dir>
# The CMake build dir provides the generated protobuf sources (gen/kes.pb.*).
# With CXX=g++ the targets are linked against standalone_main.cc instead.
# Then e.g.: <out-dir>/fuzz_decrypt -max_total_time=60 <out-dir>/corpus_decrypt
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
out=$2
cxx=${CXX:-clang++}
mkdir -p "$out"
libs="$src/src/crypto/*.cc $src/src/identity/*.cc $src/src/common/time.cc $build/gen/kes.pb.cc"
flags="-std=c++20 -O1 -g -fno-omit-frame-pointer -I$src/src -I$build/gen"
case "$cxx" in
  *clang*) san="-fsanitize=fuzzer,address,undefined"; driver="" ;;
  *) san="-fsanitize=address,undefined"; driver="$src/tests/fuzz/standalone_main.cc" ;;
esac
for t in fuzz_key_version fuzz_decrypt fuzz_pem; do
  # shellcheck disable=SC2086
  $cxx $flags $san "$src/tests/fuzz/$t.cc" $driver $libs \
    -lprotobuf -lmsgpuck -lssl -lcrypto -lpthread -o "$out/$t"
done
# Seed corpora from the spec's vectors, when the spec folder is beside the repo.
vectors=${KES_SPEC_DIR:-$src/../shared/spec}/vectors/kes-test-vectors.json
if [ -f "$vectors" ]; then
  python3 - "$vectors" "$out" <<'PY'
import base64, json, os, sys
d = json.load(open(sys.argv[1])); out = sys.argv[2]
def put(name, i, data):
    os.makedirs(os.path.join(out, name), exist_ok=True)
    open(os.path.join(out, name, str(i)), "wb").write(data)
for i, v in enumerate(d["key_version_parse"]):
    put("corpus_key_version", i, v["input"]["stored_value_text"].encode())
for i, v in enumerate(d["secret_key_decrypt"]):
    put("corpus_decrypt", i, bytes([0 if v["input"]["key_type"] == "AES256" else 1]) +
        base64.b64decode(v["input"]["ciphertext_b64"]))
for i, v in enumerate(d["tls_pem_loading"]):
    if "file_text" in v["input"]:
        put("corpus_pem", i, v["input"]["file_text"].encode())
PY
fi
