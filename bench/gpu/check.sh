#!/usr/bin/env bash
# The whole GPU check in one device call (issue 9), from the project root with .gpu/ carried:
#   device run, carry [".gpu"], timeout_s 600:  bash bench/gpu/check.sh
# Builds llama.cpp (the copy vendored in llama-cpp-python 0.3.36) with CUDA in the background
# while it draws a Qwen3-4B-shaped checkpoint on the GPU; then converts and quantises it with
# our converter (Q4_K_M), and prints mathsolve against llama-bench / llama-batched-bench on the
# same file (K = 1, 8, 32; Qwen's default sampling and the card's protocol; every sampling
# path), eval throughput with problems in flight, the reproducibility contract, the real
# GPU-out-of-memory fall-back and --cpu. Expected: about 8 minutes on an H200 (build ~220 s).
# Everything goes to /tmp/w, packed into $OUT/w.tar.gz as it goes; the summary is printed last.
#
# Dry run on a CPU machine (checks the script, not the GPU):
#   GPU=0 SITE=0 BUILD=scratch/llama.cpp/build LAYERS=1 TOKENS=8 KS=1,2 PROBLEMS=4 bash bench/gpu/check.sh
set -u
R=$PWD; G=$R/.gpu; OUTDIR=${OUT:-/tmp/gpu-out}; W=/tmp/w; mkdir -p "$W" "$OUTDIR"
GPU=${GPU:-1}; LAYERS=${LAYERS:-36}; SITE=${SITE:-1}; BUILD=${BUILD:-}
TOKENS=${TOKENS:-256}; KS=${KS:-1,8,32}; PROBLEMS=${PROBLEMS:-64}
NGL=$([ "$GPU" = 1 ] && echo 99 || echo 0)
pack() { tar czf "$OUTDIR/w.tar.gz.tmp" -C /tmp w 2>/dev/null && mv "$OUTDIR/w.tar.gz.tmp" "$OUTDIR/w.tar.gz"; }
log() { echo "[+${SECONDS}s] $*" | tee -a "$W/steps.log"; pack; }
step() { local name=$1 limit=$2 rc; shift 2; log "$name"; timeout "$limit" "$@" >"$W/$name.txt" 2>&1;
         rc=$?; log "$name rc=$rc"; return $rc; }
need() { "$@" || { tail -20 "$W/$2.txt"; log "stopped: $2 failed"; exit 1; }; }
export PATH=$PATH:/usr/local/cuda/bin
[ "$GPU" = 1 ] && log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader); $(nproc) cores"

if [ -z "$BUILD" ]; then   # CUDA build in the background (a warm rerun reuses the objects)
  BUILD=/tmp/lb/build; mkdir -p /tmp/lb; [ -d /tmp/lb/llama.cpp ] || tar xzf "$G/llama.cpp-trim.tar.gz" -C /tmp/lb
  ( cmake -S /tmp/lb/llama.cpp -B $BUILD -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON >"$W/cmake.log" 2>&1 \
    && cmake --build $BUILD -j "$(nproc)" --target llama llama-bench llama-batched-bench \
      >"$W/build.log" 2>&1; echo $? >/tmp/lb/rc ) &
else
  mkdir -p /tmp/lb; echo 0 >/tmp/lb/rc
fi
BIN=$BUILD/bin

if [ "$SITE" = 1 ]; then   # the device has no registry: the payload's wheels and package
  python3 -m pip install -q --no-index --no-deps --target /tmp/site "$G"/whl/*.whl >"$W/pip.log" 2>&1
  cp -r "$G/llama_cpp" /tmp/site/ && ln -sfn "$R/convert" /tmp/site/mathsolve_convert
  export PYTHONPATH=$R:/tmp/site LLAMA_CPP_LIB_PATH=$BIN LD_LIBRARY_PATH=$BIN:${LD_LIBRARY_PATH:-}
fi
export MATHSOLVE_HOME=/tmp/mshome
PY=python3; M=/tmp/m-q4_k_m.gguf

need step checkpoint 120 $PY bench/gpu/make_4b.py /tmp/hf "$G/qwen3-tokenizer" --layers "$LAYERS"
while [ ! -f /tmp/lb/rc ] && [ $SECONDS -lt 400 ]; do sleep 5; done
[ "$(cat /tmp/lb/rc 2>/dev/null)" = 0 ] || { log "build not done (rc=$(cat /tmp/lb/rc 2>/dev/null))"; tail -5 "$W/build.log"; exit 1; }
log "build done"
need step convert 150 $PY -m mathsolve_convert /tmp/hf -o $M --outtype q4_k_m --force
rm -rf /tmp/hf
step doctor 60 $PY -m mathsolve doctor
step sampling 240 $PY bench/bench_sampling.py --model $M --ks "$KS" --paths auto,vector,chain \
  --runs 1 --tokens "$TOKENS" --ngl $NGL --llama-bin "$BIN"
step inflight 150 $PY bench/bench_inflight.py --model $M --problems "$PROBLEMS" --samples 8 --tokens "$TOKENS" \
  --data "$G/gsm8k64.jsonl" --ngl $NGL --llama-bin "$BIN"
step repro 90 $PY bench/gpu/repro.py $M --tokens "$((TOKENS < 64 ? TOKENS : 64))"
step cpu 90 $PY -m mathsolve --model $M --cpu -v --max-tokens 8 --json "What is 2+2?"
if [ "$GPU" = 1 ]; then   # the real out-of-memory path: hold the GPU's memory, then load
  mkfifo /tmp/hold; $PY bench/gpu/hold_gpu.py 512 </tmp/hold >"$W/hold.txt" 2>&1 & exec 3>/tmp/hold
  sleep 8; step oom 120 $PY -m mathsolve --model $M -v --max-tokens 8 --json "What is 2+2?"
  exec 3>&-; wait
fi
log "end"
echo "== summary"; cat "$W/steps.log"
for f in doctor sampling inflight repro; do [ -f "$W/$f.txt" ] && { echo "== $f"; grep -v '^\s*$' "$W/$f.txt" | tail -40; }; done
for f in cpu oom; do [ -f "$W/$f.txt" ] && { echo "== $f"; grep -E '^mathsolve:|^\{|rror' "$W/$f.txt" | cut -c1-300; }; done
