#!/usr/bin/env bash
# Run HERE, in the project root, before a GPU check: fills .gpu/ (git-ignored; carried to the
# device with carry [".gpu"]) with what the device machine lacks: the llama.cpp sources that
# llama-cpp-python 0.3.36 vendors (trimmed), its Python package (ctypes only, no library), the
# pure-Python wheels mathsolve needs there, the real Qwen3 tokenizer and 64 GSM8K problems.
#   bash bench/gpu/prepare.sh [SHARED_DIR]     (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${1:-../shared}
rm -rf .gpu && mkdir -p .gpu/whl && d=$(mktemp -d)
python3 -m pip download -q --no-binary :all: --no-deps -d "$d" llama-cpp-python==0.3.36
tar xzf "$d"/llama_cpp_python-0.3.36.tar.gz -C "$d"
cp -r "$d"/llama_cpp_python-0.3.36/llama_cpp .gpu/
( cd "$d"/llama_cpp_python-0.3.36/vendor && tar czf - \
    --exclude='llama.cpp/ggml/src/ggml-'{cann,et,hexagon,metal,musa,opencl,openvino,sycl,virtgpu,vulkan,webgpu,zdnn,zendnn} \
    --exclude='llama.cpp/tools/ui' \
    llama.cpp/{CMakeLists.txt,cmake,common,ggml,include,src,vendor,tools,licenses,LICENSE} ) > .gpu/llama.cpp-trim.tar.gz
# the versions this checkout is tested with, where the device has none
pins=$(python3 - <<'PY'
from importlib.metadata import version
names = ["gguf", "math-verify", "latex2sympy2_extended", "antlr4-python3-runtime", "platformdirs"]
print(" ".join(f"{n}=={version(n)}" for n in names))
PY
)
python3 -m pip download -q --no-deps --only-binary=:all: -d .gpu/whl $pins
cp -r "$SHARED/qwen3-tokenizer" .gpu/
head -n 64 "$SHARED/data/gsm8k_test.jsonl" > .gpu/gsm8k64.jsonl
rm -rf "$d"; du -sh .gpu
