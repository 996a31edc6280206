#!/usr/bin/env bash
# Builds llama.cpp's own benchmarks (llama-bench, llama-batched-bench) from the llama.cpp that
# llama-cpp-python 0.3.36 vendors, so mathsolve is compared with llama.cpp on the same code.
# CPU build by default; CUDA=1 builds for CUDA (CUDA_ARCH, default 90).
#   bash bench/build_llama_tools.sh [OUT_DIR]      (default: scratch/llama.cpp)
# Prints the directory holding the binaries. Needs cmake and a C++ compiler; about 5 minutes on
# 2 cores. The sdist comes from the package registry through pip (nothing is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-scratch/llama.cpp}
mkdir -p "$OUT"
if [ ! -d "$OUT/src/llama_cpp_python-0.3.36" ]; then
  python3 -m pip download -q --no-binary :all: --no-deps -d "$OUT/src" llama-cpp-python==0.3.36
  tar xzf "$OUT/src/llama_cpp_python-0.3.36.tar.gz" -C "$OUT/src"
fi
SRC="$OUT/src/llama_cpp_python-0.3.36/vendor/llama.cpp"
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF
       -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON)
if [ "${CUDA:-0}" = 1 ]; then FLAGS+=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}"); fi
cmake -S "$SRC" -B "$OUT/build" "${FLAGS[@]}" >"$OUT/cmake.log" 2>&1
cmake --build "$OUT/build" -j "$(nproc)" --target llama-bench llama-batched-bench >"$OUT/build.log" 2>&1
echo "$OUT/build/bin"
