//! One-time conversion of Q4_1 weights (as shipped) to Q8_0, which candle runs with SIMD kernels (~10x faster).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};

use crate::error::{Error, Result};

/// GGUF `general.file_type` value meaning "mostly Q8_0" (llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0).
const FILE_TYPE_MOSTLY_Q8_0: u32 = 7;

/// Path of the Q8_0 cache of a GGUF file: `<stem>.q8_0.gguf` in the same directory.
pub fn q8_cache_path(src: &Path) -> PathBuf {
    let stem = src
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_string());
    src.with_file_name(format!("{stem}.q8_0.gguf"))
}

/// Whether the file holds tensors in a format candle only runs with scalar kernels.
pub(crate) fn needs_requant(content: &gguf_file::Content) -> bool {
    content
        .tensor_infos
        .values()
        .any(|info| info.ggml_dtype == GgmlDType::Q4_1)
}

/// Reads every tensor, converts the Q4_1 ones to Q8_0 and returns the whole model serialized as GGUF.
pub(crate) fn requantize<R: Read + Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
    path: &Path,
) -> Result<Vec<u8>> {
    // File order keeps the output byte-identical from one run to the next.
    let mut names: Vec<(&String, u64)> = content
        .tensor_infos
        .iter()
        .map(|(name, info)| (name, info.offset))
        .collect();
    names.sort_by_key(|&(_, offset)| offset);

    let mut tensors = Vec::with_capacity(names.len());
    for (name, _) in names {
        let tensor = content
            .tensor(reader, name, &Device::Cpu)
            .map_err(|e| Error::model(path, format!("reading tensor {name}: {e}")))?;
        let converted = if tensor.dtype() == GgmlDType::Q4_1 && fits_q8_0(&tensor) {
            let dense = tensor
                .dequantize(&Device::Cpu)
                .map_err(|e| Error::model(path, format!("dequantizing {name}: {e}")))?;
            QTensor::quantize(&dense, GgmlDType::Q8_0)
                .map_err(|e| Error::model(path, format!("quantizing {name} to Q8_0: {e}")))?
        } else {
            tensor
        };
        tensors.push((name.as_str(), converted));
    }

    let file_type = gguf_file::Value::U32(FILE_TYPE_MOSTLY_Q8_0);
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        // The writer always aligns to 32 bytes; a copied alignment key could contradict it.
        .filter(|(key, _)| key.as_str() != "general.alignment")
        .map(|(key, value)| {
            if key == "general.file_type" {
                (key.as_str(), &file_type)
            } else {
                (key.as_str(), value)
            }
        })
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();

    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)
        .map_err(|e| Error::model(path, format!("serializing the Q8_0 model: {e}")))?;
    Ok(out.into_inner())
}

/// Q8_0 packs rows in blocks of 32 values; a row of another length must stay as it is.
fn fits_q8_0(tensor: &QTensor) -> bool {
    tensor
        .shape()
        .dims()
        .last()
        .is_some_and(|&n| n % GgmlDType::Q8_0.block_size() == 0)
}

/// Writes `bytes` to `dest` so that readers see either no file or the whole file (temp file, fsync, rename).
pub(crate) fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.gguf".to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Unique per process and instant, so concurrent loaders never write into each other's temp file.
    let tmp = dir.join(format!(".{file_name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io("renaming into place", dest, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
