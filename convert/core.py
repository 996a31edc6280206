"""convert(): validate everything, then stream tensors into a temporary GGUF and rename it.

All checks that can fail on bad input run before the first byte is written, so a bad
checkpoint leaves nothing behind; a failure while writing removes the temporary file.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .arch import Hparams, add_hparams, parse_config
from .checkpoint import read_json, read_tensors
from .errors import ConversionError
from .quantize import quantize_file
from .tensor_map import map_tensor, required_sources
from .tensors import (
    DIRECT_TYPES,
    OUTTYPES,
    QUANTISED_TYPES,
    SIZE_RATIO,
    Planned,
    choose_type,
    encode_chunks,
    encoded_nbytes,
)
from .vocab import Vocab, add_special_vocab, load_vocab

# The phases this converter reports as (stage, done, total); mathsolve.models.cache.Phase adds
# the pull's "sha256" (this package imports nothing of mathsolve).
Stage = Literal["read", "write", "quantize"]
Progress = Callable[[Stage, int, int], None]
METADATA_MARGIN = 64 << 20
DISK_MARGIN = 64 << 20


def _plan(hf_dir: Path, outtype: str) -> tuple[Hparams, list[Planned]]:
    """Validate config and tensors against each other; the tensor list in output order."""
    if not hf_dir.exists():
        raise ConversionError(f"model directory {hf_dir} does not exist")
    if not hf_dir.is_dir():
        raise ConversionError(f"{hf_dir} is not a directory; pass the Hugging Face model folder")
    hp = parse_config(read_json(hf_dir / "config.json", "not a Hugging Face model folder"))
    shapes = hp.shape_vars()
    plan: list[Planned] = []
    seen: set[str] = set()
    direct = outtype if outtype in DIRECT_TYPES else "bf16"
    for ref in read_tensors(hf_dir):
        mapped = map_tensor(hp.arch, ref.name, shapes)
        if mapped is None:
            continue
        name, expected = mapped
        if ref.shape != expected:
            raise ConversionError(f"tensor {ref.name} has shape {list(ref.shape)} but config.json implies "
                                  f"{list(expected)}; config and weights disagree")
        qtype = choose_type(name, ref.shape, direct)
        plan.append(Planned(ref, name, qtype, encoded_nbytes(ref.shape, qtype)))
        seen.add(ref.name)
    missing = [n for n in required_sources(hp.arch, hp.layers) if n not in seen]
    if missing:
        raise ConversionError(f"tensor {missing[0]} is missing from the checkpoint ({len(missing)} missing); "
                              "re-download it")
    return hp, plan


def estimate_output_bytes(hf_dir: str | os.PathLike[str], outtype: str) -> int:
    """Peak disk use of a conversion (for quantised types: bf16 intermediate plus result)."""
    _check_outtype(outtype)
    hf_dir = Path(hf_dir)
    _, plan = _plan(hf_dir, outtype)
    body = sum(p.nbytes for p in plan) + METADATA_MARGIN
    if outtype in QUANTISED_TYPES:
        return body + int(body * SIZE_RATIO[outtype])
    return body


def check_free_space(directory: Path, needed: int, free: int | None = None) -> None:
    """Raise if `directory` has less than `needed` bytes free (free is injectable for tests)."""
    if free is None:
        free = shutil.disk_usage(directory).free
    if free < needed + DISK_MARGIN:
        raise ConversionError(
            f"not enough disk space in {directory}: need {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB free; "
            "free some space or choose another output folder"
        )


def _check_outtype(outtype: str) -> None:
    if outtype not in OUTTYPES:
        raise ConversionError(f"unknown output type {outtype!r}; choose one of {', '.join(OUTTYPES)}")


def _write_gguf(path: Path, hf_dir: Path, hp: Hparams, vocab: Vocab, plan: list[Planned], file_type: int,
                progress: Progress | None) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path=None, arch=hp.arch)
    for p in plan:  # tensor infos first: the parameter count feeds general.size_label
        writer.add_tensor_info(p.name, p.ref.shape, np.dtype(np.float32), p.nbytes, raw_dtype=p.qtype)
    writer.add_type(gguf.GGUFType.MODEL)
    total_params = writer.get_total_parameter_count()[0]
    # general.name, size_label, basename, ... come from the model folder name and model card by
    # gguf's Metadata heuristics, as in the reference; gguf 0.19.0 does not map
    # generation_config's repetition_penalty, which the vendored gguf-py does: done here.
    meta = gguf.Metadata.load(None, hf_dir, None, total_params)
    if meta.name is None:
        meta.name = hf_dir.name
    if meta.sampling_penalty_repeat is None:
        gen = hf_dir / "generation_config.json"
        rep = read_json(gen, "").get("repetition_penalty") if gen.is_file() else None
        if isinstance(rep, (int, float)) and not isinstance(rep, bool):
            meta.sampling_penalty_repeat = rep
    if meta.size_label is None and total_params > 0:
        meta.size_label = gguf.size_label(*writer.get_total_parameter_count())
    meta.set_gguf_meta_model(writer)
    add_hparams(writer, hp, file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.toktypes)
    add_special_vocab(writer, hf_dir, vocab.tokens)

    writer.write_header_to_file(path=path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    if writer.fout is None:  # write_header_to_file opens it
        raise ConversionError(f"{path}: the GGUF writer opened no file")
    fout = writer.fout[0]
    writer.write_padding(fout, fout.tell())
    total = sum(p.nbytes for p in plan)
    done = 0
    for p in plan:
        written = 0
        for chunk in encode_chunks(p):
            fout.write(chunk)
            written += len(chunk)
            done += len(chunk)
            if progress is not None:
                progress("write", done, total)
        if written != p.nbytes:
            raise ConversionError(f"internal error: {p.name} encoded to {written} bytes, expected {p.nbytes}")
        writer.write_padding(fout, p.nbytes)
    writer.close()


def _stage(progress: Progress | None, stage: Stage) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def convert(hf_dir: str | os.PathLike[str], out_path: str | os.PathLike[str], outtype: str = "bf16", *,
            force: bool = False, progress: Progress | None = None) -> Path:
    """Convert a Qwen3/Qwen2 safetensors checkpoint to GGUF; returns the output path."""
    _check_outtype(outtype)
    hf_dir, out = Path(hf_dir), Path(out_path)
    if progress is not None:
        progress("read", 0, 1)
    hp, plan = _plan(hf_dir, outtype)
    vocab = load_vocab(hf_dir, hp.vocab)
    if out.exists() and not force:
        raise ConversionError(f"{out} already exists; pass --force to overwrite it")
    if out.is_dir():
        raise ConversionError(f"{out} is a directory; give a file name ending in .gguf")
    if not out.parent.is_dir():
        raise ConversionError(f"output folder {out.parent} does not exist")
    if progress is not None:
        progress("read", 1, 1)
    check_free_space(out.parent, estimate_output_bytes(hf_dir, outtype))

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp_bf16 = out.with_name(f".{out.name}.{os.getpid()}.bf16.tmp")
    try:
        if outtype in DIRECT_TYPES:
            _write_gguf(tmp, hf_dir, hp, vocab, plan, DIRECT_TYPES[outtype][0], progress)
        else:
            _write_gguf(tmp_bf16, hf_dir, hp, vocab, plan, DIRECT_TYPES["bf16"][0], progress)
            if progress is not None:
                progress("quantize", 0, 1)  # the tensor count comes with the quantiser's log
            tensors = quantize_file(tmp_bf16, tmp, QUANTISED_TYPES[outtype],
                                    progress=_stage(progress, "quantize"))
            if progress is not None and not tensors:
                progress("quantize", 1, 1)
        os.replace(tmp, out)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise ConversionError(f"not enough disk space writing {out} ({e.strerror}); "
                                  "free some space and retry") from None
        raise ConversionError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
        tmp_bf16.unlink(missing_ok=True)
    return out
